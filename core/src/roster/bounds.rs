//! Bounds on an .xls or .ods roster, checked before calamine reads it.
//!
//! calamine reads every sheet of an .xls or .ods whole when it opens the workbook, and sizes its
//! buffers by what the file claims: an .xls sheet's DIMENSIONS record (rows as a `u32`) is
//! reserved up front, each sheet's cells are laid out in the box from the first to the last (an
//! .xls cell's row and column are each a `u16`: 65,536 × 65,536), an .ods row or cell repeated a
//! million times is expanded, and the compound file under an .xls is followed chain by chain as
//! its sectors say, loops included. A file of a few KB can so ask for terabytes, and an
//! allocation that fails aborts the process, which no `catch_unwind` stops.
//!
//! These checks walk the same structures calamine will (the compound file's chains, the
//! workbook's records; content.xml's tables, rows and cells), in memory bounded by the file's
//! own size, and refuse before calamine runs: a sheet whose cells span more than
//! [`MAX_ROWS`] rows or [`MAX_COLS`] columns, or sheets that together span more than
//! `MAX_ROWS × MAX_COLS` cells, as too large ([`too_big`]); what no spreadsheet program writes
//! (an .xls cell or DIMENSIONS box beyond the format's 65,536 rows × 256 columns, a chain that
//! loops or leaves the file) as a damaged sheet ([`bad_sheet`]). The .xlsx reader
//! bounds itself as it reads cells (`read_xlsx`).

use std::io::{BufReader, Read};
use std::path::Path;

use super::{MAX_COLS, MAX_ROWS, bad_sheet, too_big, unreadable};
use crate::error::Result;

/// Cells all the sheets of one workbook may span together.
const MAX_CELLS: u64 = (MAX_ROWS as u64) * (MAX_COLS as u64);

/// The box of one sheet's cells (inclusive, 0-based), grown cell by cell.
#[derive(Debug, Default, Clone, Copy)]
struct Extent {
    rows: Option<(u64, u64)>,
    cols: Option<(u64, u64)>,
}

impl Extent {
    /// Adds the cells in rows `r0..=r1` and columns `c0..=c1`; refuses the sheet once its box
    /// passes the bounds.
    fn cover(&mut self, (r0, r1): (u64, u64), (c0, c1): (u64, u64)) -> Result<()> {
        let rows = self.rows.map_or((r0, r1), |(a, b)| (a.min(r0), b.max(r1)));
        let cols = self.cols.map_or((c0, c1), |(a, b)| (a.min(c0), b.max(c1)));
        if rows.1 - rows.0 >= MAX_ROWS as u64 || cols.1 - cols.0 >= MAX_COLS as u64 {
            return Err(too_big());
        }
        (self.rows, self.cols) = (Some(rows), Some(cols));
        Ok(())
    }

    fn cells(&self) -> u64 {
        match (self.rows, self.cols) {
            (Some((r0, r1)), Some((c0, c1))) => (r1 - r0 + 1) * (c1 - c0 + 1),
            _ => 0,
        }
    }
}

/// What the sheets of one workbook span together.
#[derive(Debug, Default)]
struct Budget(u64);

impl Budget {
    fn spend(&mut self, cells: u64) -> Result<()> {
        self.0 = self.0.saturating_add(cells);
        if self.0 > MAX_CELLS {
            return Err(too_big());
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// .ods

/// Checks every table of an .ods (calamine reads them all when it opens the file). A cell
/// counts when it holds anything (a value type, or content inside it); an empty cell or row, even
/// repeated a million times (LibreOffice writes the formatted rest of a sheet that way), does
/// not. The columns are bounded from column A, not from the first used one: calamine keeps every
/// column up to the last used one in each row.
pub(super) fn check_ods(path: &Path) -> Result<()> {
    use quick_xml::events::Event;

    let file = std::fs::File::open(path)?;
    let mut zip = zip::ZipArchive::new(BufReader::new(file)).map_err(|_| unreadable())?;
    let content = zip.by_name("content.xml").map_err(|_| unreadable())?;
    let mut xml = quick_xml::Reader::from_reader(BufReader::new(content));
    let mut buf = Vec::new();
    let mut skip = Vec::new();
    let mut budget = Budget::default();
    // The table being read: its box and its next row; the row being read: its first line, how
    // many times it repeats and its next column.
    let mut table: Option<(Extent, u64)> = None;
    let mut row: Option<(u64, u64, u64)> = None;
    loop {
        let event = xml.read_event_into(&mut buf).map_err(|_| bad_sheet())?;
        match event {
            Event::Eof => break,
            Event::Start(ref e) | Event::Empty(ref e) => {
                let empty = matches!(event, Event::Empty(_));
                match e.name().into_inner() {
                    "table:table" if !empty => table = Some((Extent::default(), 0)),
                    "table:table-row" => {
                        let Some((_, next)) = table.as_mut() else {
                            continue;
                        };
                        let repeats = repeats(e, "table:number-rows-repeated")?;
                        if empty {
                            *next = next.saturating_add(repeats);
                        } else {
                            row = Some((*next, repeats, 0));
                        }
                    }
                    "table:table-cell" | "table:covered-table-cell" => {
                        let (Some((extent, _)), Some((line, rows, col))) =
                            (table.as_mut(), row.as_mut())
                        else {
                            continue;
                        };
                        let repeats = repeats(e, "table:number-columns-repeated")?;
                        let valued = e
                            .try_get_attribute("office:value-type")
                            .map_err(|_| bad_sheet())?
                            .is_some();
                        if valued || !empty {
                            let last = col.saturating_add(repeats - 1);
                            extent.cover(
                                (*line, line.saturating_add(*rows - 1)),
                                (0, last.max(*col)),
                            )?;
                        }
                        *col = col.saturating_add(repeats);
                        if !empty {
                            // What the cell holds (paragraphs, notes) is not a row or a cell.
                            let end = e.to_end().into_owned();
                            xml.read_to_end_into(end.name(), &mut skip)
                                .map_err(|_| bad_sheet())?;
                            skip.clear();
                        }
                    }
                    _ => {}
                }
            }
            Event::End(ref e) => match e.name().into_inner() {
                "table:table-row" => {
                    if let (Some((_, next)), Some((line, rows, _))) = (table.as_mut(), row.take()) {
                        *next = line.saturating_add(rows);
                    }
                }
                "table:table" => {
                    if let Some((extent, _)) = table.take() {
                        budget.spend(extent.cells())?;
                    }
                    row = None;
                }
                _ => {}
            },
            _ => {}
        }
        buf.clear();
    }
    Ok(())
}

/// A `number-…-repeated` attribute: 1 when absent, at least 1.
fn repeats(e: &quick_xml::events::BytesStart<'_>, name: &str) -> Result<u64> {
    let Some(a) = e.try_get_attribute(name).map_err(|_| bad_sheet())? else {
        return Ok(1);
    };
    let text = a.value;
    // calamine refuses a count it cannot parse; anything past u64 is beyond every bound anyway.
    match text.trim().parse::<u64>() {
        Ok(n) => Ok(n.max(1)),
        Err(_) if !text.is_empty() && text.trim().bytes().all(|b| b.is_ascii_digit()) => {
            Err(too_big())
        }
        Err(_) => Err(bad_sheet()),
    }
}

// ---------------------------------------------------------------------------------------------
// .xls: the compound file (MS-CFB) as calamine reads it

const RESERVED_SECTORS: u32 = 0xFFFF_FFFA;
const DIFSECT: u32 = 0xFFFF_FFFC;
const ENDOFCHAIN: u32 = 0xFFFF_FFFE;
/// What an .xls sheet can hold (BIFF8): a cell beyond it is no sheet Excel wrote.
const XLS_ROWS: u64 = 65_536;
const XLS_COLS: u64 = 256;
const SIGNATURE: &[u8; 8] = b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1";

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u32s(b: &[u8]) -> impl Iterator<Item = u32> + '_ {
    b.chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
}

/// Sectors of one size over bytes: the file after its header, or the mini stream.
struct Sectors<'a> {
    data: &'a [u8],
    size: usize,
    /// The highest id calamine accepts.
    maxid: u64,
}

impl Sectors<'_> {
    /// A sector as calamine reads it: short, or empty, at the end of the data.
    fn get(&self, id: u32) -> Result<&[u8]> {
        if u64::from(id) > self.maxid {
            return Err(bad_sheet());
        }
        let start = id as usize * self.size;
        if start > self.data.len() {
            return Err(bad_sheet());
        }
        Ok(&self.data[start..(start + self.size).min(self.data.len())])
    }

    /// A chain of sectors up to `len` bytes, as calamine follows it; a chain that loops (more
    /// steps than there are sectors) or leaves the table is damaged, where calamine would grow
    /// it up to `len` (which the file claims) or forever.
    fn chain(&self, mut id: u32, fat: &[u32], len: usize) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut steps = 0u64;
        while id != ENDOFCHAIN {
            let sector = self.get(id)?;
            let take = sector.len().min(len - out.len());
            out.extend_from_slice(&sector[..take]);
            if out.len() >= len {
                break;
            }
            id = *fat.get(id as usize).ok_or_else(bad_sheet)?;
            steps += 1;
            if steps > self.maxid + 1 {
                return Err(bad_sheet());
            }
        }
        Ok(out)
    }
}

/// The `Workbook` (or `Book`) stream of an .xls, read as calamine's compound-file reader does.
fn workbook_stream(file: &[u8]) -> Result<Vec<u8>> {
    let header = file.get(..512).ok_or_else(unreadable)?;
    if &header[..8] != SIGNATURE {
        return Err(unreadable());
    }
    let field = |at| u32_at(header, at).ok_or_else(unreadable);
    let version = u16_at(header, 26).ok_or_else(unreadable)?;
    let size = match u16_at(header, 30) {
        Some(9) => 512,
        Some(12) => 4096,
        _ => return Err(unreadable()),
    };
    if u16_at(header, 32) != Some(6) || file.len() < size {
        return Err(unreadable());
    }
    let maxid = (file.len() / size) as u64;
    let sectors = Sectors {
        data: &file[size..],
        size,
        maxid,
    };
    let mut difat: Vec<u32> = u32s(&header[76..512]).collect();
    let mut id = field(68)?;
    let mut steps = 0u64;
    while id < RESERVED_SECTORS {
        steps += 1;
        if steps > maxid + 1 {
            return Err(bad_sheet());
        }
        difat.extend(u32s(sectors.get(id)?));
        id = difat.pop().ok_or_else(bad_sheet)?;
    }
    // Each FAT sector is a sector of the file: more than there are is a loop that would make
    // calamine read the same sectors again and again.
    let fat_ids: Vec<u32> = difat.into_iter().filter(|id| *id < DIFSECT).collect();
    if fat_ids.len() as u64 > maxid + 1 {
        return Err(bad_sheet());
    }
    let mut fat = Vec::new();
    for id in fat_ids {
        fat.extend(u32s(sectors.get(id)?));
    }
    let dirs = sectors.chain(field(48)?, &fat, usize::MAX)?;
    let dirs: Vec<(String, u32, usize)> = dirs
        .chunks_exact(128)
        .map(|d| {
            let units = d[..64]
                .chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]));
            let mut name: String = char::decode_utf16(units)
                .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
                .collect();
            if let Some(nul) = name.find('\0') {
                name.truncate(nul);
            }
            let start = u32_at(d, 116).unwrap_or(ENDOFCHAIN);
            let len = if size == 512 {
                u64::from(u32_at(d, 120).unwrap_or(0))
            } else {
                u64::from_le_bytes(d[120..128].try_into().unwrap_or_default())
            };
            (name, start, usize::try_from(len).unwrap_or(usize::MAX))
        })
        .collect();
    let Some(root) = dirs.first() else {
        return Err(unreadable());
    };
    if version != 3 && root.1 == ENDOFCHAIN {
        return Err(unreadable());
    }
    let mini_fat_len = field(64)? as usize;
    let (mini_fat, mini_stream) = if mini_fat_len > 0 {
        let stream = sectors.chain(root.1, &fat, root.2)?;
        let mini_fat = sectors.chain(field(60)?, &fat, mini_fat_len.saturating_mul(size))?;
        (u32s(&mini_fat).collect::<Vec<_>>(), stream)
    } else {
        (Vec::new(), Vec::new())
    };
    let entry = ["Workbook", "Book"]
        .iter()
        .find_map(|want| dirs.iter().find(|d| d.0.eq_ignore_ascii_case(want)))
        .ok_or_else(unreadable)?;
    if entry.2 < 4096 {
        Sectors {
            data: &mini_stream,
            size: 64,
            maxid: maxid * 8,
        }
        .chain(entry.1, &mini_fat, entry.2)
    } else {
        sectors.chain(entry.1, &fat, entry.2)
    }
}

// ---------------------------------------------------------------------------------------------
// .xls: the workbook's records

/// BIFF records as calamine iterates them: type, length, data (a CONTINUE record only carries
/// on the one before, whose type is what calamine looks at).
fn records(mut stream: &[u8]) -> impl Iterator<Item = Result<(u16, &[u8])>> {
    std::iter::from_fn(move || {
        if stream.is_empty() {
            return None;
        }
        let (Some(typ), Some(len)) = (u16_at(stream, 0), u16_at(stream, 2)) else {
            stream = &[];
            return Some(Err(bad_sheet()));
        };
        let Some(data) = stream.get(4..4 + len as usize) else {
            stream = &[];
            return Some(Err(bad_sheet()));
        };
        stream = &stream[4 + len as usize..];
        Some(Ok((typ, data)))
    })
}

/// Checks every sheet of an .xls (calamine reads them all when it opens the file): the cells it
/// keeps (numbers, labels, booleans and errors, formulas, shared strings, runs of numbers) and
/// the space a DIMENSIONS record has it reserve.
pub(super) fn check_xls(path: &Path) -> Result<()> {
    let mut file = Vec::new();
    std::fs::File::open(path)?.read_to_end(&mut file)?;
    let stream = workbook_stream(&file)?;
    let mut sheets = Vec::new();
    for record in records(&stream) {
        match record? {
            (0x0085, data) => sheets.push(u32_at(data, 0).ok_or_else(bad_sheet)? as usize),
            (0x000A, _) => break,
            _ => {}
        }
    }
    let mut budget = Budget::default();
    for pos in sheets {
        let sheet = stream.get(pos..).ok_or_else(bad_sheet)?;
        let mut extent = Extent::default();
        let mut seen_bof = false;
        let mut depth = 0usize;
        for record in records(sheet) {
            let (typ, data) = record?;
            if depth > 0 {
                match typ {
                    0x0809 => depth += 1,
                    0x000A => depth -= 1,
                    _ => {}
                }
                continue;
            }
            let at = |i| u16_at(data, i).map(u64::from);
            match typ {
                0x0809 if seen_bof => depth += 1,
                0x0809 => seen_bof = true,
                0x000A => break,
                0x0200 => check_dimensions(data)?,
                0x0203 | 0x0204 | 0x00D6 | 0x0205 | 0x027E | 0x00FD | 0x0006 => {
                    if let (Some(row), Some(col)) = (at(0), at(2)) {
                        if col >= XLS_COLS {
                            return Err(bad_sheet());
                        }
                        extent.cover((row, row), (col, col))?;
                    }
                }
                // MulRk: a row of numbers from a first to a last column.
                0x00BD if data.len() >= 6 => {
                    if let (Some(row), Some(first), Some(last)) = (at(0), at(2), at(data.len() - 2))
                    {
                        if last >= XLS_COLS {
                            return Err(bad_sheet());
                        }
                        if last >= first {
                            extent.cover((row, row), (first, last))?;
                        }
                    }
                }
                _ => {}
            }
        }
        budget.spend(extent.cells())?;
    }
    Ok(())
}

/// A DIMENSIONS record: calamine reserves room for every cell of the box it names, computed as
/// it does (`u32` arithmetic that wraps when the last row is before the first).
fn check_dimensions(data: &[u8]) -> Result<()> {
    let fields = match data.len() {
        10 => (
            u16_at(data, 0).map(u32::from),
            u16_at(data, 2).map(u32::from),
            u16_at(data, 4),
            u16_at(data, 6),
        ),
        14 | 16 => (
            u32_at(data, 0),
            u32_at(data, 4),
            u16_at(data, 8),
            u16_at(data, 10),
        ),
        // calamine refuses the file.
        _ => return Ok(()),
    };
    let (Some(rf), Some(rl), Some(cf), Some(cl)) = fields else {
        return Err(bad_sheet());
    };
    let (rf, rl, mut cf, cl) = (rf, rl, u32::from(cf), u32::from(cl));
    if 0xFF < cf || cl < cf {
        cf = 0;
    }
    let (end_row, end_col) = if rl >= 1 && cl >= 1 {
        (rl - 1, cl - 1)
    } else {
        (rf, cf)
    };
    let rows = u64::from(end_row.wrapping_sub(rf).wrapping_add(1));
    let cols = u64::from(end_col.wrapping_sub(cf).wrapping_add(1));
    // More than an .xls can hold (65,536 × 256), or a last row before the first: no sheet
    // Excel wrote.
    if rows == 0 || rows > XLS_ROWS || cols == 0 || cols > XLS_COLS {
        return Err(bad_sheet());
    }
    if rows * cols > MAX_CELLS {
        return Err(too_big());
    }
    Ok(())
}

#[cfg(test)]
pub(super) mod tests {
    //! Small crafted workbooks, written here rather than kept as files.
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// A BIFF record.
    pub(crate) fn record(typ: u16, data: &[u8]) -> Vec<u8> {
        let mut out = typ.to_le_bytes().to_vec();
        out.extend((data.len() as u16).to_le_bytes());
        out.extend(data);
        out
    }

    /// A LABEL record: a string at (row, col).
    pub(crate) fn label(row: u16, col: u16, text: &str) -> Vec<u8> {
        let units: Vec<u16> = text.encode_utf16().collect();
        let mut data = row.to_le_bytes().to_vec();
        data.extend(col.to_le_bytes());
        data.extend(0u16.to_le_bytes()); // ixfe
        data.extend((units.len() as u16).to_le_bytes());
        data.push(1); // UTF-16
        data.extend(units.iter().flat_map(|u| u.to_le_bytes()));
        record(0x0204, &data)
    }

    /// A DIMENSIONS record (BIFF8): rows `first..last`, columns `cf..cl` (last ones exclusive).
    pub(crate) fn dimensions(first: u32, last: u32, cf: u16, cl: u16) -> Vec<u8> {
        let mut data = first.to_le_bytes().to_vec();
        data.extend(last.to_le_bytes());
        data.extend(cf.to_le_bytes());
        data.extend(cl.to_le_bytes());
        data.extend(0u16.to_le_bytes());
        record(0x0200, &data)
    }

    /// A BIFF8 workbook stream with one sheet made of `sheet` (records between its BOF and EOF).
    pub(crate) fn workbook(sheet: &[Vec<u8>]) -> Vec<u8> {
        let bof = |dt: u16| {
            let mut d = 0x0600u16.to_le_bytes().to_vec();
            d.extend(dt.to_le_bytes());
            d.extend([0; 12]);
            record(0x0809, &d)
        };
        let boundsheet = |pos: u32| {
            let mut d = pos.to_le_bytes().to_vec();
            d.extend([0, 0, 2, 0]); // visible worksheet; name: 2 chars, 8-bit
            d.extend(b"S1");
            record(0x0085, &d)
        };
        let globals_len = (bof(5).len() + boundsheet(0).len() + record(0x000A, &[]).len()) as u32;
        let mut out = bof(5);
        out.extend(boundsheet(globals_len));
        out.extend(record(0x000A, &[]));
        out.extend(bof(0x10));
        for r in sheet {
            out.extend(r);
        }
        out.extend(record(0x000A, &[]));
        out
    }

    /// A compound file (version 3, 512-byte sectors) holding `stream` as `Workbook`: in the
    /// mini stream (64-byte sectors) when it is under 4,096 bytes, as the format wants.
    pub(crate) fn compound_file(stream: &[u8]) -> Vec<u8> {
        let mini = stream.len() < 4096;
        let mut header = vec![0u8; 512];
        header[..8].copy_from_slice(SIGNATURE);
        header[24..26].copy_from_slice(&0x3Eu16.to_le_bytes());
        header[26..28].copy_from_slice(&3u16.to_le_bytes());
        header[28..30].copy_from_slice(&0xFFFEu16.to_le_bytes());
        header[30..32].copy_from_slice(&9u16.to_le_bytes());
        header[32..34].copy_from_slice(&6u16.to_le_bytes());
        header[44..48].copy_from_slice(&1u32.to_le_bytes()); // FAT sectors
        header[48..52].copy_from_slice(&1u32.to_le_bytes()); // first directory sector
        header[56..60].copy_from_slice(&4096u32.to_le_bytes());
        let (mini_fat_start, mini_fat_len) = if mini { (2u32, 1u32) } else { (ENDOFCHAIN, 0) };
        header[60..64].copy_from_slice(&mini_fat_start.to_le_bytes());
        header[64..68].copy_from_slice(&mini_fat_len.to_le_bytes());
        header[68..72].copy_from_slice(&ENDOFCHAIN.to_le_bytes()); // no DIFAT sectors
        for (i, slot) in header[76..512].chunks_exact_mut(4).enumerate() {
            let id = if i == 0 { 0 } else { u32::MAX };
            slot.copy_from_slice(&id.to_le_bytes());
        }
        // The data: the stream itself, or the mini stream holding it.
        let mini_sectors = stream.len().div_ceil(64) as u32;
        let data_len = if mini {
            mini_sectors as usize * 64
        } else {
            stream.len()
        };
        let data_sectors = data_len.div_ceil(512) as u32;
        // FAT: sector 0 is the FAT, 1 the directory, (2 the mini FAT,) then the data's chain.
        let mut fat = vec![0xFFFF_FFFDu32, ENDOFCHAIN];
        if mini {
            fat.push(ENDOFCHAIN);
        }
        let first = fat.len() as u32;
        for i in 0..data_sectors {
            let next = if i + 1 == data_sectors {
                ENDOFCHAIN
            } else {
                first + i + 1
            };
            fat.push(next);
        }
        assert!(fat.len() <= 128, "test workbook too large");
        fat.resize(128, u32::MAX);
        let mut file = header;
        file.extend(fat.iter().flat_map(|v| v.to_le_bytes()));
        let entry = |name: &str, typ: u8, start: u32, len: u32| {
            let mut e = vec![0u8; 128];
            let units: Vec<u16> = name.encode_utf16().chain([0]).collect();
            for (i, u) in units.iter().enumerate() {
                e[i * 2..i * 2 + 2].copy_from_slice(&u.to_le_bytes());
            }
            e[64..66].copy_from_slice(&((units.len() * 2) as u16).to_le_bytes());
            e[66] = typ;
            e[68..80].copy_from_slice(&[0xFF; 12]); // no siblings, no child
            e[116..120].copy_from_slice(&start.to_le_bytes());
            e[120..124].copy_from_slice(&len.to_le_bytes());
            e
        };
        let len = stream.len() as u32;
        if mini {
            file.extend(entry("Root Entry", 5, first, data_len as u32));
            file.extend(entry("Workbook", 2, 0, len));
        } else {
            file.extend(entry("Root Entry", 5, ENDOFCHAIN, 0));
            file.extend(entry("Workbook", 2, first, len));
        }
        file.extend([0u8; 256]);
        if mini {
            let mut mini_fat: Vec<u32> = (1..=mini_sectors)
                .map(|i| if i == mini_sectors { ENDOFCHAIN } else { i })
                .collect();
            mini_fat.resize(128, u32::MAX);
            file.extend(mini_fat.iter().flat_map(|v| v.to_le_bytes()));
        }
        let mut data = stream.to_vec();
        data.resize(data_sectors as usize * 512, 0);
        file.extend(data);
        file
    }

    /// An .ods whose content.xml has `rows` (table-row elements) in its one table.
    pub(crate) fn ods(rows: &str) -> Vec<u8> {
        use std::io::Write;
        let content = format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" office:version="1.2"><office:body><office:spreadsheet><table:table table:name="S1">{rows}</table:table></office:spreadsheet></office:body></office:document-content>"#
        );
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let stored = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        zip.start_file("mimetype", stored).unwrap();
        zip.write_all(b"application/vnd.oasis.opendocument.spreadsheet")
            .unwrap();
        zip.start_file("META-INF/manifest.xml", stored).unwrap();
        zip.write_all(
            br#"<?xml version="1.0" encoding="UTF-8"?>
<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.2"><manifest:file-entry manifest:full-path="/" manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/><manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/></manifest:manifest>"#,
        )
        .unwrap();
        zip.start_file("content.xml", stored).unwrap();
        zip.write_all(content.as_bytes()).unwrap();
        zip.finish().unwrap().into_inner()
    }

    /// A row of string cells.
    pub(crate) fn ods_row(cells: &[&str]) -> String {
        let cells: String = cells
            .iter()
            .map(|c| format!(r#"<table:table-cell office:value-type="string"><text:p>{c}</text:p></table:table-cell>"#))
            .collect();
        format!("<table:table-row>{cells}</table:table-row>")
    }

    #[test]
    fn a_dimensions_box_is_bounded_as_calamine_computes_it() {
        assert!(check_dimensions(&dimensions(0, 3, 0, 5)[4..]).is_ok());
        assert!(check_dimensions(&dimensions(0, 20_000, 0, 200)[4..]).is_ok());
        for d in [
            dimensions(0, u32::MAX, 0, 256),
            dimensions(0, 65_537, 0, 2),
            // The last row before the first: calamine's subtraction wraps.
            dimensions(10, 5, 0, 3),
        ] {
            let e = check_dimensions(&d[4..]).unwrap_err().to_string();
            assert!(e.contains("已损坏"), "{e}");
        }
        let e = check_dimensions(&dimensions(0, 65_536, 0, 256)[4..])
            .unwrap_err()
            .to_string();
        assert!(e.contains("表格太大"), "{e}");
    }

    #[test]
    fn a_compound_file_whose_chain_loops_is_damaged() {
        let mut stream = workbook(&[label(0, 0, "姓名")]);
        stream.resize(4096, 0);
        let mut file = compound_file(&stream);
        assert!(workbook_stream(&file).is_ok());
        // The stream's last sector (the 8th, after the FAT's and the directory's) points back
        // at its first.
        let fat_at = 512;
        let last = fat_at + 4 * (2 + 7);
        file[last..last + 4].copy_from_slice(&2u32.to_le_bytes());
        let grown = {
            // Claim a stream of 3 GB: calamine would grow the loop to it.
            let dir = 512 * 2 + 128;
            file[dir + 120..dir + 124].copy_from_slice(&3_000_000_000u32.to_le_bytes());
            file
        };
        let e = workbook_stream(&grown).unwrap_err().to_string();
        assert!(e.contains("已损坏"), "{e}");
    }
}
