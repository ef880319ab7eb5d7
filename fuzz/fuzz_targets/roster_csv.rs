//! A roster (名单) as a .csv file, read as `shouwang roster import` reads it
//! (`roster::read_file`: UTF-8, CSV, the header's columns, every row's fields).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    shouwang_fuzz::read_roster(data, "csv");
});
