//! The roster table the fixtures, fuzz seeds and benches import: a school's list of children
//! as a spreadsheet gives it (a header row of the importer's column names, then one row per
//! child), ready for `shouwang_core::roster::parse_table`.
//!
//! Each caller picks its columns and their order; a child's row holds a value for every column
//! the importer reads, and the table takes the ones its columns name.

/// A column of the roster table, named in the header row as the importer reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Column {
    /// 学籍号: the child's student number.
    StudentNo,
    /// 姓名
    Name,
    /// 性别: 男 or 女.
    Sex,
    /// 出生日期
    BirthDate,
    /// 班级: the class's name.
    Class,
    /// 监护人: the guardian's name.
    Guardian,
    /// 与监护人关系: what the guardian is to the child (奶奶, 祖母...).
    GuardianRelation,
    /// 联系电话: the guardian's phone.
    GuardianPhone,
    /// 外出务工: which parents work away (父亲, 母亲, 父母).
    ParentsAway,
    /// 身份证号: the child's ID number.
    IdNumber,
    /// 寄宿: whether the child boards (是 or 否).
    Boarding,
    /// 家庭住址: the family's address.
    Address,
}

impl Column {
    /// The columns every roster has: 学籍号, 姓名, 班级.
    pub const MINIMAL: [Column; 3] = [Column::StudentNo, Column::Name, Column::Class];

    /// The column's name in the header row.
    pub const fn header(self) -> &'static str {
        match self {
            Column::StudentNo => "学籍号",
            Column::Name => "姓名",
            Column::Sex => "性别",
            Column::BirthDate => "出生日期",
            Column::Class => "班级",
            Column::Guardian => "监护人",
            Column::GuardianRelation => "与监护人关系",
            Column::GuardianPhone => "联系电话",
            Column::ParentsAway => "外出务工",
            Column::IdNumber => "身份证号",
            Column::Boarding => "寄宿",
            Column::Address => "家庭住址",
        }
    }

    /// The child's value in this column.
    fn cell(self, child: &ChildRow) -> &str {
        match self {
            Column::StudentNo => &child.student_no,
            Column::Name => &child.name,
            Column::Sex => &child.sex,
            Column::BirthDate => &child.birth_date,
            Column::Class => &child.class,
            Column::Guardian => &child.guardian,
            Column::GuardianRelation => &child.guardian_relation,
            Column::GuardianPhone => &child.guardian_phone,
            Column::ParentsAway => &child.parents_away,
            Column::IdNumber => &child.id_number,
            Column::Boarding => &child.boarding,
            Column::Address => &child.address,
        }
    }
}

/// One child's row: a value for each [`Column`] (an empty value is an empty cell; a value whose
/// column the table leaves out is not written).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChildRow {
    pub student_no: String,
    pub name: String,
    pub sex: String,
    pub birth_date: String,
    pub class: String,
    pub guardian: String,
    pub guardian_relation: String,
    pub guardian_phone: String,
    pub parents_away: String,
    pub id_number: String,
    pub boarding: String,
    pub address: String,
}

impl ChildRow {
    /// A child with the values every roster has, the others empty.
    pub fn new(
        student_no: impl Into<String>,
        name: impl Into<String>,
        class: impl Into<String>,
    ) -> Self {
        Self {
            student_no: student_no.into(),
            name: name.into(),
            class: class.into(),
            ..Self::default()
        }
    }
}

/// The roster table: a header row naming `columns`, then one row per child with the child's
/// values in those columns, in that order.
pub fn table(columns: &[Column], children: impl IntoIterator<Item = ChildRow>) -> Vec<Vec<String>> {
    let header = columns.iter().map(|c| c.header().to_owned()).collect();
    let rows = children
        .into_iter()
        .map(|child| columns.iter().map(|c| c.cell(&child).to_owned()).collect());
    std::iter::once(header).chain(rows).collect()
}
