// Test harness only. The generated bindings import `kotlinx.coroutines.DelicateCoroutinesApi`
// (kotlinx-coroutines 1.5+), which they use only for async callback interfaces (we have none).
// Debian's libkotlinx-coroutines-java is 1.0.1 and lacks it, so the JVM tests compile this
// stand-in beside the bindings. An app uses a current kotlinx-coroutines and does not need it.
package kotlinx.coroutines

@RequiresOptIn
@Retention(AnnotationRetention.BINARY)
annotation class DelicateCoroutinesApi
