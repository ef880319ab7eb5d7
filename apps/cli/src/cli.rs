//! Command-line syntax: the clap types. Every text a user sees here is Chinese; clap's own fixed
//! English words (headings, `Print help`) are replaced when help is rendered (see `main.rs`).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use shouwang_core::kinds::{RecordKind, SECTIONS};
use shouwang_core::roles::Role;

/// The default store file, in the current directory.
pub const DEFAULT_STORE: &str = "shouwang.db";
/// Environment variable naming the store.
pub const STORE_ENV: &str = "SHOUWANG_STORE";

#[derive(Debug, Parser)]
#[command(
    name = "shouwang",
    version,
    about = "守望：农村留守儿童关爱档案（离线优先，多台设备通过数据文件同步）",
    arg_required_else_help = true,
    after_help = "先用 init-school 创建学校，或用 join 从管理员导出的数据文件加入；\n用 shouwang <命令> --help 查看每个命令的用法。"
)]
pub struct Cli {
    #[arg(
        long,
        global = true,
        help_heading = "通用选项",
        value_name = "文件",
        help = "档案库文件（也可用环境变量 SHOUWANG_STORE 指定；默认为当前目录下的 shouwang.db）"
    )]
    pub store: Option<PathBuf>,

    #[arg(
        long,
        global = true,
        help_heading = "通用选项",
        value_name = "文件",
        help = "加密档案库的密钥文件（64 位十六进制；如学校服务器的 hub-data.key）"
    )]
    pub key_file: Option<PathBuf>,

    #[arg(
        long,
        global = true,
        help_heading = "通用选项",
        help = "以 JSON 格式输出（列表和查看类命令）"
    )]
    pub json: bool,

    #[arg(
        long,
        global = true,
        help_heading = "通用选项",
        value_name = "秒",
        help = "连接学校服务器或另一台设备时最多等多少秒（1–600，默认 30；网络很慢时可调大）"
    )]
    pub connect_timeout: Option<String>,

    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// How long a network command waits to reach its peer: `--connect-timeout`, else 30 s.
    pub fn connect_timeout(&self) -> Result<std::time::Duration, String> {
        let Some(text) = self.connect_timeout.as_deref() else {
            return Ok(std::time::Duration::from_secs(30));
        };
        match text.trim().parse::<u64>() {
            Ok(secs @ 1..=600) => Ok(std::time::Duration::from_secs(secs)),
            _ => Err(format!(
                "--connect-timeout 应为 1 到 600 之间的秒数，而不是“{text}”"
            )),
        }
    }

    /// The store path: `--store`, else `$SHOUWANG_STORE`, else `shouwang.db`.
    pub fn store_path(&self) -> PathBuf {
        self.store
            .clone()
            .or_else(|| {
                std::env::var_os(STORE_ENV)
                    .filter(|v| !v.is_empty())
                    .map(PathBuf::from)
            })
            .unwrap_or_else(|| PathBuf::from(DEFAULT_STORE))
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    #[command(about = "在这台设备上创建学校档案库（第一台设备）")]
    InitSchool(InitSchoolArgs),
    #[command(about = "用管理员导出的数据文件在新设备上建立档案库")]
    Join(JoinArgs),
    #[command(
        about = "同步：默认与学校服务器；也可以与附近的另一台设备直接同步（需要先用邀请码 join）"
    )]
    Sync(SyncArgs),
    #[command(about = "列出同一局域网（同一 Wi-Fi 或手机热点）里正在等待同步的设备")]
    Nearby(NearbyArgs),
    #[command(about = "同步状态：上次成功同步的时间，服务器还没有收到的修改")]
    Status,
    #[command(about = "查看学校和本设备使用者")]
    Info,
    #[command(subcommand, about = "班级：添加、更换班主任、列出")]
    Class(ClassCmd),
    #[command(subcommand, about = "成员（教师、爱心妈妈等）：添加、列出")]
    Member(MemberCmd),
    #[command(about = "结对帮扶：把一名成员和一名学生结成对子")]
    Pair(PairArgs),
    #[command(subcommand, about = "工作规则（家访、谈心次数等）：查看、修改")]
    Rules(RulesCmd),
    #[command(subcommand, about = "学生名单（学籍表）")]
    Roster(RosterCmd),
    #[command(about = "列出学生")]
    Children(ChildrenArgs),
    #[command(subcommand, about = "一名学生的档案：查看、修改")]
    Child(ChildCmd),
    #[command(about = "填写关爱记录（家访、谈心、电话记录等），以及修改、作废、进步档案")]
    Record(RecordCmd),
    #[command(about = "列出一名学生档案中未解决的冲突")]
    Conflicts(ConflictsArgs),
    #[command(about = "解决冲突：选用其中一个值，或填写新值")]
    Resolve(ResolveArgs),
    #[command(about = "待办：本期要完成和已逾期的工作")]
    Due(DueArgs),
    #[command(about = "全校各项规则的完成情况")]
    Compliance(ComplianceArgs),
    #[command(about = "报表：学校的登记表和统计表导出为 .xlsx（校长/领导组、档案管理员）")]
    Report(ReportArgs),
    #[command(subcommand, about = "数据文件：在设备之间交换档案")]
    Bundle(BundleCmd),
    #[command(subcommand, about = "设备：为成员的新设备导出登记文件")]
    Device(DeviceCmd),
    #[command(about = "列出被拒绝的修改（来自其他设备、不符合权限规则、已隔离）")]
    Quarantine,
    #[command(
        about = "查阅记录：谁在哪台设备上何时查看了保密档案、导出了数据文件（并检查记录是否被改动）"
    )]
    Audit(AuditArgs),
    #[command(
        subcommand,
        about = "监护人同意：登记、撤回；要求全校的隐私部分先取得同意"
    )]
    Consent(ConsentCmd),
    #[command(
        subcommand,
        about = "学校设置：个人信息保护负责人；按角色拆分旧学校的档案"
    )]
    School(SchoolCmd),
    #[command(about = "生成一所示范学校并演示两台设备离线记录、交换和冲突")]
    Demo(DemoArgs),
}

fn role_names() -> String {
    Role::ALL
        .iter()
        .map(|r| r.label())
        .collect::<Vec<_>>()
        .join("、")
}

#[derive(Debug, Args)]
pub struct InitSchoolArgs {
    #[arg(long, value_name = "校名", help = "学校名称，如 郭庄小学")]
    pub name: String,
    #[arg(long, value_name = "乡镇", help = "所在乡镇，如 丁里镇")]
    pub town: String,
    #[arg(long, value_name = "电话", help = "亲情电话号码（可选）")]
    pub hotline: Option<String>,
    #[arg(long, value_name = "姓名", help = "管理员（本设备使用者）姓名")]
    pub admin: String,
    #[arg(
        long,
        value_name = "角色",
        default_value = "档案管理员",
        help = "管理员角色：校长 或 档案管理员"
    )]
    pub admin_role: String,
    #[arg(long, value_name = "名称", help = "本设备名称（可选）")]
    pub device: Option<String>,
    #[arg(
        long,
        help = "不加密（只用于试用或测试的档案）；正式的办公室档案请用 --key-file 加密"
    )]
    pub plain: bool,
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("stay").args(["wait", "live"]))]
pub struct SyncArgs {
    #[arg(
        long,
        value_name = "设备码",
        conflicts_with = "stay",
        help = "与这台设备直接同步（不经过学校服务器）。设备码由对方的 shouwang sync --wait 显示；\
                可写成 设备码@地址:端口；只写设备码时在局域网里寻找"
    )]
    pub peer: Option<String>,
    #[arg(
        long,
        help = "等待附近的设备来同步（对方运行 shouwang sync --peer <本机设备码>）"
    )]
    pub wait: bool,
    #[arg(
        long,
        help = "与学校服务器保持连接：本机的新记录随时发出，其他设备同步到服务器的记录随时收到"
    )]
    pub live: bool,
    #[arg(
        long,
        value_name = "秒",
        default_value_t = 300,
        requires = "stay",
        help = "--wait 最多等待多少秒；--live 保持连接多少秒"
    )]
    pub seconds: u64,
    #[arg(long, requires = "wait", help = "完成一次同步后就结束等待")]
    pub once: bool,
}

#[derive(Debug, Args)]
pub struct NearbyArgs {
    #[arg(long, value_name = "秒", default_value_t = 5, help = "搜索多少秒")]
    pub seconds: u64,
}

#[derive(Debug, Args)]
pub struct JoinArgs {
    #[arg(
        value_name = "邀请码",
        help = "管理员用 shouwang-relay invite 生成的邀请码（shouwang1…），通过网络加入",
        conflicts_with_all = ["bundle", "member"]
    )]
    pub ticket: Option<String>,
    #[arg(
        long,
        value_name = "文件",
        help = "管理员用 device add 为这台设备导出的数据文件（没有网络时用）"
    )]
    pub bundle: Option<PathBuf>,
    #[arg(
        long,
        value_name = "姓名",
        help = "使用这台设备的成员（可选，用来核对文件是为谁导出的）",
        requires = "bundle"
    )]
    pub member: Option<String>,
    #[arg(
        long,
        value_name = "口令",
        help = "管理员当面给你的 16 位数字口令（不写则在终端询问）",
        requires = "bundle"
    )]
    pub passphrase: Option<String>,
    #[arg(long, value_name = "名称", help = "本设备名称（可选）")]
    pub device: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum DeviceCmd {
    #[command(
        about = "为成员的新设备登记并导出数据文件（新设备用 join --bundle 加入；仅校长或档案管理员）"
    )]
    Add {
        #[arg(long, value_name = "成员", help = "使用新设备的成员（姓名或编号）")]
        member: String,
        #[arg(long, value_name = "名称", help = "设备名称，如 王老师的手机（可选）")]
        label: Option<String>,
        #[arg(long, value_name = "文件", help = "写到哪个文件")]
        out: PathBuf,
    },
    #[command(about = "列出已登记的设备：使用者、名称、是否停用、上次同步")]
    List,
    #[command(
        about = "停用一台设备（手机丢失）：学校服务器和知道此事的设备都拒绝它（仅校长或档案管理员）"
    )]
    Revoke {
        #[arg(
            value_name = "设备",
            help = "设备编号，或其前至少6位（见 device list）"
        )]
        device: String,
    },
    #[command(
        about = "报告设备丢失：停用它，并列出它可能保存过哪些学生的档案、自何时起（供学校履行告知义务；仅校长或档案管理员）"
    )]
    Lost {
        #[arg(
            value_name = "设备",
            help = "设备编号，或其前至少6位（见 device list）"
        )]
        device: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConsentCmd {
    #[command(
        about = "登记监护人同意书（班主任、校长或档案管理员）",
        after_help = "同意范围：basic(基本档案)、private(隐私部分：身份证号、学籍号、特别关注、心理辅导记录、个别教育管理方案)、photos(照片)，用逗号分隔。\n再次登记会替换原来的同意，并取消撤回。"
    )]
    Record {
        #[arg(value_name = "学生", help = "姓名、学籍号或编号")]
        child: String,
        #[arg(long, value_name = "姓名", help = "签字的监护人")]
        guardian: String,
        #[arg(long, value_name = "关系", help = "与学生的关系，如 奶奶")]
        relation: String,
        #[arg(long, value_name = "日期", help = "同意书上的日期，如 2026-09-01")]
        date: String,
        #[arg(long, value_name = "范围", help = "同意范围，如 basic,private")]
        covers: String,
        #[arg(long, value_name = "编号", help = "纸质同意书编号")]
        form: String,
    },
    #[command(about = "登记监护人撤回同意：此后不能再新增所撤回范围的内容")]
    Withdraw {
        #[arg(value_name = "学生", help = "姓名、学籍号或编号")]
        child: String,
        #[arg(long, value_name = "日期", help = "撤回日期")]
        date: String,
        #[arg(long, value_name = "姓名", help = "撤回的监护人")]
        by: String,
        #[arg(long, value_name = "范围", help = "撤回范围，如 private")]
        covers: String,
    },
    #[command(about = "要求全校学生档案的隐私部分先取得监护人同意（仅校长或档案管理员；不可撤销）")]
    Require,
    #[command(about = "查看一名学生的监护人同意")]
    Show {
        #[arg(value_name = "学生", help = "姓名、学籍号或编号")]
        child: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum SchoolCmd {
    #[command(about = "设置学校的个人信息保护负责人及联系电话（仅校长或档案管理员）")]
    PrivacyOfficer {
        #[arg(long, value_name = "姓名", help = "负责人姓名")]
        name: String,
        #[arg(long, value_name = "电话", help = "联系电话")]
        phone: String,
    },
    #[command(
        about = "按角色拆分旧学校的档案（仅校长或档案管理员）",
        long_about = "把旧版本建立的学校档案按角色拆分：三特、父母务工单位、监护人健康状况等移入只有班主任和管理员持有的部分，成员电话移出人人持有的学校信息，并重建每名学生的档案，使其他设备的副本不再保留这些内容。"
    )]
    Split,
}

#[derive(Debug, Subcommand)]
pub enum ClassCmd {
    #[command(
        about = "添加班级",
        after_help = "班级已经存在时不会做任何改动；要更换班主任，请用 class head。"
    )]
    Add {
        #[arg(value_name = "班级", help = "班级名称，如 三年级(1)班")]
        name: String,
        #[arg(
            long,
            value_name = "姓名",
            help = "班主任（已添加的成员；会获得班主任角色）"
        )]
        head: Option<String>,
    },
    #[command(
        about = "更换班级的班主任",
        after_help = "新班主任获得班主任角色，可以查看和填写本班全部学生的档案（含私密部分）；\n\
                      原班主任不再负责本班，不再能查看本班学生的档案（结对帮扶的学生除外），\n\
                      如果不再担任其他班级的班主任，同时失去班主任角色。\n\
                      例：shouwang class head '三年级(1)班' --head 王瑞侠"
    )]
    Head {
        #[arg(value_name = "班级", help = "班级名称或编号")]
        class: String,
        #[arg(long, value_name = "姓名", help = "新的班主任（已添加的成员）")]
        head: String,
    },
    #[command(about = "列出班级")]
    List,
}

#[derive(Debug, Subcommand)]
pub enum MemberCmd {
    #[command(about = "添加成员")]
    Add(MemberAddArgs),
    #[command(about = "列出成员")]
    List,
    #[command(
        about = "停用成员（如离开的志愿者）：停用其全部设备，设备下次同步时删除档案（仅校长或档案管理员）"
    )]
    Deactivate {
        #[arg(value_name = "成员", help = "成员姓名或编号")]
        name: String,
    },
}

#[derive(Debug, Args)]
pub struct MemberAddArgs {
    #[arg(value_name = "姓名", help = "成员姓名")]
    pub name: String,
    #[arg(
        long = "role",
        value_name = "角色",
        required = true,
        help = format!("角色，可填多个（中文名或英文键）：{}", role_names())
    )]
    pub roles: Vec<String>,
    #[arg(long, value_name = "班级", help = "所在班级（班主任填写所带班级）")]
    pub class: Option<String>,
    #[arg(long, value_name = "电话", help = "联系电话")]
    pub phone: Option<String>,
}

#[derive(Debug, Args)]
pub struct PairArgs {
    #[arg(long, value_name = "成员", help = "帮扶人（姓名或编号）")]
    pub carer: String,
    #[arg(long, value_name = "学生", help = "学生（姓名、学籍号或编号）")]
    pub child: String,
    #[arg(
        long,
        value_name = "角色",
        help = "以什么角色帮扶（默认为帮扶人的角色）",
        conflicts_with = "end"
    )]
    pub role: Option<String>,
    #[arg(
        long,
        help = "结束这对结对帮扶：帮扶人的设备下次同步或导入时删除这名学生的档案"
    )]
    pub end: bool,
}

#[derive(Debug, Subcommand)]
pub enum RulesCmd {
    #[command(about = "查看规则")]
    Show,
    #[command(about = "修改规则")]
    Set {
        #[arg(value_name = "规则", help = "规则键或名称，见 rules show")]
        key: String,
        #[arg(
            value_name = "数值",
            help = "新的数值（0 表示不检查这条规则；档案保存年限至少 1 年）"
        )]
        value: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum RosterCmd {
    #[command(
        about = "从 .xlsx 或 .csv 导入学生名单",
        after_help = "表头列：学籍号、姓名、性别、出生日期、身份证号、班级、家庭住址、监护人、与监护人关系、联系电话、\n\
                      父亲姓名、父亲电话、母亲姓名、母亲电话、外出务工（父亲/母亲/父母）、寄宿（是/否）。\n\
                      姓名和班级必填；整个文件校验无误后才会导入，任何一行有误都不会写入。\n\n\
                      再次导入时：新学生建立档案，档案里还空着的字段按名单填写；\n\
                      档案里已有、但与名单不同的值（有人修改过、解决过冲突，或仍有冲突）一律不改，\n\
                      逐项列出（学生、字段、名单中的值、档案中的值）。核对后确认以名单为准，再加 --update 导入。"
    )]
    Import {
        #[arg(value_name = "文件", help = "名单文件（.xlsx 或 .csv）")]
        file: PathBuf,
        #[arg(long, help = "档案中与名单不同的值也改为名单中的值")]
        update: bool,
    },
}

#[derive(Debug, Args)]
pub struct ChildrenArgs {
    #[arg(long, value_name = "班级", help = "只列出这个班级")]
    pub class: Option<String>,
    #[arg(long, help = "只列出我负责的学生")]
    pub mine: bool,
    #[arg(long, value_name = "文字", help = "只列出姓名或编号含这段文字的学生")]
    pub search: Option<String>,
    #[arg(long, value_name = "父亲|母亲|父母", help = "只列出这样外出务工的学生")]
    pub away: Option<String>,
    #[arg(
        long,
        value_name = "特困生|特长生|特殊学生",
        help = "只列出有这项三特标记的学生"
    )]
    pub flag: Option<String>,
    #[arg(
        long,
        conflicts_with_all = ["class", "mine", "search", "away", "flag"],
        help = "列出已离校的学生（离校日期、原因、档案保存期限；仅校长或档案管理员）"
    )]
    pub left: bool,
}

/// The sections and their fields, for `child edit --help`.
fn sections_help() -> String {
    let mut s = String::from("栏目和字段（键 = 名称）：\n");
    for sec in SECTIONS {
        let fields: Vec<String> = sec
            .fields
            .iter()
            .map(|f| format!("{}={}", f.key, f.label))
            .collect();
        s.push_str(&format!(
            "  {}（{}）：{}\n",
            sec.key,
            sec.label,
            fields.join("，")
        ));
    }
    s.push_str("例：shouwang child edit 王小明 guardian phone=13956241178 relation=奶奶");
    s
}

#[derive(Debug, Subcommand)]
pub enum ChildCmd {
    #[command(about = "查看一名学生的完整档案")]
    Show {
        #[arg(value_name = "学生", help = "姓名、学籍号或编号")]
        child: String,
        #[arg(long, value_name = "理由", help = "查看保密部分的理由（记入查阅记录）")]
        why: Option<String>,
        #[arg(
            long,
            requires = "why",
            help = "显示完整的身份证号和学籍号（仅班主任、校长、档案管理员；须用 --why 写明理由，记入查阅记录）"
        )]
        reveal_id: bool,
    },
    #[command(about = "修改档案中一个栏目的字段", after_help = sections_help())]
    Edit {
        #[arg(value_name = "学生", help = "姓名、学籍号或编号")]
        child: String,
        #[arg(value_name = "栏目", help = "栏目键或名称，如 guardian 或 监护人")]
        section: String,
        #[arg(
            value_name = "键=值",
            required = true,
            help = "要修改的字段，如 phone=13956241178"
        )]
        fields: Vec<String>,
    },
    #[command(
        about = "删除一名学生的全部档案（仅校长、档案管理员）",
        long_about = "删除一名学生的全部档案（仅校长、档案管理员）：用于监护人申请删除、转学后档案已移交，或保存期满。\n\
                      本机立即清除；其他设备下次与学校服务器或管理员设备同步、或导入数据文件时清除，之后不再接收。\n\
                      学校只保留一条删除记录：学生编号、日期、原因、操作人。原因里不要写学生的姓名或证件号。",
        after_help = "例：shouwang child erase 王小明 --reason \"监护人书面申请（申请表 2026-031 号）\""
    )]
    Erase {
        #[arg(value_name = "学生", help = "姓名、学籍号或编号")]
        child: String,
        #[arg(long, value_name = "原因", help = "删除原因（必填）")]
        reason: String,
    },
    #[command(about = "列出已删除的学生档案（删除记录）")]
    Erased,
    #[command(
        about = "登记学生离校（转学、毕业、辍学；仅校长、档案管理员）",
        long_about = "登记学生离校（转学、毕业、辍学；仅校长、档案管理员）：从此这名学生不再由班主任、爱心妈妈等负责，\n\
                      他们的设备下次同步或导入数据文件时删除这份档案；结对帮扶随之结束，不再列入待办和完成情况。\n\
                      只有管理员保留档案，保存到离校后的保存年限（规则 retention_years，默认 3 年），\n\
                      之后由 child retention 列出，审核后用 child erase 删除。学生回校用 child return。",
        after_help = "例：shouwang child leave 王小明 --date 2026-07-01 --reason 转学 --to 丁里镇中心小学"
    )]
    Leave {
        #[arg(value_name = "学生", help = "姓名、学籍号或编号")]
        child: String,
        #[arg(
            long,
            value_name = "日期",
            help = "离校日期，如 2026-07-01（不能晚于今天）"
        )]
        date: String,
        #[arg(long, value_name = "原因", help = "转学、毕业、辍学 或 其他")]
        reason: String,
        #[arg(long, value_name = "学校", help = "转入的学校（可选）")]
        to: Option<String>,
    },
    #[command(
        about = "学生回校：撤销离校登记，班主任的设备下次同步时重新收到档案（仅校长、档案管理员）"
    )]
    Return {
        #[arg(value_name = "学生", help = "姓名、学籍号或编号")]
        child: String,
    },
    #[command(
        about = "列出超过保存期限、待审核删除的离校学生档案（仅校长、档案管理员）",
        after_help = "保存年限是规则 retention_years（rules show 查看，rules set retention_years 年数 修改）。"
    )]
    Retention {
        #[arg(long, value_name = "日期", help = "按哪一天计算（默认为今天）")]
        date: Option<String>,
    },
    #[command(
        about = "重建一名学生的档案，去掉修改历史（仅校长、档案管理员）",
        long_about = "重建一名学生的档案，去掉修改历史（仅校长、档案管理员）：更正了姓名或身份证号后，旧值仍留在档案的修改历史里；\n\
                      重建后档案只保留现在的内容，各设备下次同步或导入数据文件时换成新档案，旧版本的修改不再接收。\n\
                      其他设备上尚未同步的新记录和改动会在换成新档案时保留下来；但学校规则此时不再允许的修改（例如监护人已撤回同意）不会保留，所以最好在各设备都同步过之后再重建。",
        after_help = "例：shouwang child rebase 王小明 --reason \"更正身份证号\""
    )]
    Rebase {
        #[arg(value_name = "学生", help = "姓名、学籍号或编号")]
        child: String,
        #[arg(long, value_name = "原因", help = "重建原因（必填）")]
        reason: String,
    },
}

/// Every record kind with its fields, for `record --help`.
fn kinds_help() -> String {
    let mut s = String::from("记录类型及字段（* 为必填）：\n");
    for k in RecordKind::ALL {
        let fields: Vec<String> = k
            .fields()
            .iter()
            .map(|f| format!("{}{}={}", if f.required { "*" } else { "" }, f.key, f.label))
            .collect();
        s.push_str(&format!(
            "  {}（{}）：{}\n",
            k.label(),
            k.key(),
            fields.join("，")
        ));
    }
    s.push_str(
        "例：shouwang record 家访 --child 王小明 --date 2025-11-18 --field notes=\"……\" met_with=奶奶\n\
         在终端里使用时，缺少的日期和必填项会逐项提示输入。",
    );
    s
}

#[derive(Debug, Args)]
#[command(
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    after_help = kinds_help()
)]
pub struct RecordCmd {
    #[command(subcommand)]
    pub action: Option<RecordAction>,
    #[command(flatten)]
    pub add: RecordAddArgs,
}

#[derive(Debug, Args)]
pub struct RecordAddArgs {
    #[arg(
        value_name = "类型",
        help = "记录类型：中文名（家访、谈心、电话记录……）或英文键"
    )]
    pub kind: Option<String>,
    #[arg(long, value_name = "学生", help = "学生（姓名、学籍号或编号）")]
    pub child: Option<String>,
    #[arg(long, value_name = "班级", help = "班级（班级关爱活动记录）")]
    pub class: Option<String>,
    #[arg(long, value_name = "日期", help = "发生日期，如 2025-11-18")]
    pub date: Option<String>,
    #[arg(
        long = "field",
        short = 'f',
        value_name = "键=值",
        num_args = 1..,
        help = "字段，可填多个：--field notes=…… study=……"
    )]
    pub fields: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum RecordAction {
    #[command(about = "修改一条记录（只能修改自己填写的）")]
    Edit {
        #[arg(value_name = "编号", help = "记录编号（至少前6位）")]
        id: String,
        #[arg(long, value_name = "日期", help = "新的发生日期")]
        date: Option<String>,
        #[arg(long = "field", short = 'f', value_name = "键=值", num_args = 1.., help = "要修改的字段")]
        fields: Vec<String>,
    },
    #[command(about = "作废一条记录（记录保留并标明已作废）")]
    Void {
        #[arg(value_name = "编号", help = "记录编号（至少前6位）")]
        id: String,
        #[arg(long, value_name = "原因", help = "作废原因")]
        reason: String,
    },
    #[command(about = "为学习帮扶计划添加进步档案")]
    Progress {
        #[arg(value_name = "计划编号", help = "学习帮扶计划的记录编号")]
        plan: String,
        #[arg(long, value_name = "日期", help = "日期，如 2025-11-18")]
        date: Option<String>,
        #[arg(
            long = "field",
            short = 'f',
            value_name = "键=值",
            num_args = 1..,
            help = "字段：result=阶段成绩，notes=进步情况（必填）"
        )]
        fields: Vec<String>,
    },
}

#[derive(Debug, Args)]
pub struct ConflictsArgs {
    #[arg(value_name = "学生", help = "姓名、学籍号或编号")]
    pub child: String,
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("choice").required(true).args(["pick", "value"]))]
pub struct ResolveArgs {
    #[arg(value_name = "学生", help = "姓名、学籍号或编号")]
    pub child: String,
    #[arg(
        value_name = "字段",
        help = "冲突字段，如 guardian.phone（见 conflicts）"
    )]
    pub path: String,
    #[arg(long, value_name = "序号", help = "选用第几个值（从1开始）")]
    pub pick: Option<usize>,
    #[arg(long, value_name = "值", help = "改为填写一个新值")]
    pub value: Option<String>,
}

#[derive(Debug, Args)]
pub struct DueArgs {
    #[arg(
        long,
        value_name = "成员",
        help = "查看哪位成员的待办（默认为本设备使用者）"
    )]
    pub member: Option<String>,
    #[arg(long, value_name = "日期", help = "按哪一天计算（默认为今天）")]
    pub date: Option<String>,
    #[arg(long, help = "也列出已完成的")]
    pub all: bool,
}

#[derive(Debug, Args)]
pub struct ComplianceArgs {
    #[arg(long, value_name = "日期", help = "开始日期")]
    pub from: String,
    #[arg(long, value_name = "日期", help = "结束日期（含）")]
    pub to: String,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    #[arg(
        value_name = "名称",
        help = "summary（留守儿童信息汇总表）、registry（留守儿童基本情况登记表）、sante（三特儿童登记表）、pairings（结对帮扶登记表）、contacts（家访、谈心、电话记录月统计）、child（一名学生的六项基本档案）；也可用中文名称"
    )]
    pub name: String,
    #[arg(
        long,
        value_name = "月份",
        help = "月份，如 2026-11（contacts 用，默认本月）"
    )]
    pub month: Option<String>,
    #[arg(long, value_name = "学生", help = "学生姓名、学籍号或编号（child 用）")]
    pub child: Option<String>,
    #[arg(
        long,
        value_name = "文件",
        help = "写到哪个 .xlsx 文件（不会覆盖已有的文件）"
    )]
    pub out: PathBuf,
    #[arg(
        long,
        requires = "why",
        help = "报表中显示完整的身份证号（如上报需要；须用 --why 写明理由，记入查阅记录）"
    )]
    pub reveal_id: bool,
    #[arg(
        long,
        value_name = "理由",
        help = "显示完整身份证号的理由（记入查阅记录）"
    )]
    pub why: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum BundleCmd {
    #[command(about = "导出数据文件")]
    Export {
        #[arg(long, value_name = "文件", help = "写到哪个文件")]
        out: PathBuf,
        #[arg(
            long = "for",
            value_name = "成员",
            help = "只导出这位成员可以看到的档案，文件加密给这位成员的设备和学校管理员（默认为使用本设备的成员）"
        )]
        for_member: Option<String>,
        #[arg(
            long,
            conflicts_with = "for_member",
            help = "导出全校的档案，文件只有学校管理员的设备能打开（只限领导组或档案管理员）"
        )]
        all: bool,
        #[arg(
            long,
            value_name = "旧文件",
            help = "对方已导入过的旧数据文件：只导出其后的新内容"
        )]
        since: Option<PathBuf>,
    },
    #[command(about = "导入数据文件（重复导入不会改变档案）")]
    Import {
        #[arg(value_name = "文件", help = "数据文件")]
        file: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    #[arg(
        long,
        value_name = "目录",
        help = "放演示数据的目录（默认新建临时目录）"
    )]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    #[arg(long, value_name = "成员", help = "只看这位成员的记录（姓名或编号）")]
    pub member: Option<String>,
    #[arg(
        long,
        value_name = "学生",
        help = "只看与这名学生有关的记录（姓名、学籍号或编号）"
    )]
    pub child: Option<String>,
}
