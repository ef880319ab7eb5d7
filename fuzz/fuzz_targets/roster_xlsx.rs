//! A roster (名单) as an .xlsx file, read as `shouwang roster import` reads it
//! (`roster::read_file`: the zip, the workbook's first sheet through calamine, every row).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    shouwang_fuzz::read_roster(data, "xlsx");
});
