//! `shouwang`: one device's care archive from the terminal.
//!
//! This file only parses the command line and dispatches; the commands live in `commands/`.

mod cli;
mod commands;
mod demo;
mod error;
mod output;
mod prompt;

use std::io::{BufWriter, Write};
use std::process::ExitCode;

use clap::Parser;
use shouwang_core::store::StoreKey;

use cli::{
    BundleCmd, ChildCmd, ClassCmd, Cli, Command, ConsentCmd, DeviceCmd, MemberCmd, RecordAction,
    RosterCmd, RulesCmd, SchoolCmd,
};
use commands::{Ctx, bundle, care, children, departure, network, privacy, school, work};
use error::Result;

fn dispatch(ctx: &mut Ctx, command: &Command) -> Result<()> {
    match command {
        Command::InitSchool(a) => school::init_school(ctx, a),
        Command::Join(a) => match &a.ticket {
            Some(ticket) => network::join(ctx, ticket, a.device.as_deref()),
            None => school::join(ctx, a),
        },
        Command::Sync(a) => match (&a.peer, a.wait, a.live) {
            (Some(peer), _, _) => network::sync_peer(ctx, peer),
            (None, true, _) => network::wait_for_peers(ctx, a.seconds, a.once),
            (None, false, true) => network::sync_live(ctx, a.seconds),
            (None, false, false) => network::sync(ctx),
        },
        Command::Nearby(a) => network::nearby(ctx, a.seconds),
        Command::Status => network::status(ctx),
        Command::Info => school::info(ctx),
        Command::Class(ClassCmd::Add { name, head }) => {
            school::class_add(ctx, name, head.as_deref())
        }
        Command::Class(ClassCmd::Head { class, head }) => school::class_head(ctx, class, head),
        Command::Class(ClassCmd::List) => school::class_list(ctx),
        Command::Member(MemberCmd::Add(a)) => school::member_add(ctx, a),
        Command::Member(MemberCmd::List) => school::member_list(ctx),
        Command::Pair(a) => school::pair(ctx, a),
        Command::Rules(RulesCmd::Show) => school::rules_show(ctx),
        Command::Rules(RulesCmd::Set { key, value }) => school::rules_set(ctx, key, value),
        Command::Roster(RosterCmd::Import { file, update }) => {
            school::roster_import(ctx, file, *update)
        }
        Command::Children(a) if a.left => departure::left_list(ctx),
        Command::Children(a) => children::list(ctx, a),
        Command::Child(ChildCmd::Show {
            child,
            why,
            reveal_id,
        }) => children::show(ctx, child, why.as_deref(), *reveal_id),
        Command::Child(ChildCmd::Edit {
            child,
            section,
            fields,
        }) => children::edit(ctx, child, section, fields),
        Command::Child(ChildCmd::Erase { child, reason }) => children::erase(ctx, child, reason),
        Command::Child(ChildCmd::Erased) => children::erased(ctx),
        Command::Child(ChildCmd::Leave {
            child,
            date,
            reason,
            to,
        }) => departure::leave(ctx, child, date, reason, to.as_deref()),
        Command::Child(ChildCmd::Return { child }) => departure::return_(ctx, child),
        Command::Child(ChildCmd::Retention { date }) => departure::retention(ctx, date.as_deref()),
        Command::Child(ChildCmd::Rebase { child, reason }) => children::rebase(ctx, child, reason),
        Command::Record(r) => match &r.action {
            None => care::add(ctx, &r.add),
            Some(RecordAction::Edit { id, date, fields }) => {
                care::edit(ctx, id, date.as_deref(), fields)
            }
            Some(RecordAction::Void { id, reason }) => care::void(ctx, id, reason),
            Some(RecordAction::Progress { plan, date, fields }) => {
                care::progress(ctx, plan, date.as_deref(), fields)
            }
        },
        Command::Conflicts(a) => children::conflicts(ctx, &a.child),
        Command::Resolve(a) => {
            children::resolve(ctx, &a.child, &a.path, a.pick, a.value.as_deref())
        }
        Command::Due(a) => work::due(ctx, a),
        Command::Compliance(a) => work::compliance(ctx, &a.from, &a.to),
        Command::Report(a) => work::report(ctx, a),
        Command::Bundle(BundleCmd::Export {
            out,
            for_member,
            all,
            since,
        }) => {
            let whom = match (all, for_member) {
                (true, _) => bundle::Whom::School,
                (false, Some(m)) => bundle::Whom::Member(m.clone()),
                (false, None) => bundle::Whom::Me,
            };
            bundle::export(ctx, out, &whom, since.as_deref())
        }
        Command::Bundle(BundleCmd::Import { file }) => bundle::import(ctx, file),
        Command::Device(DeviceCmd::Add { member, label, out }) => {
            bundle::device_add(ctx, member, label.as_deref(), out)
        }
        Command::Device(DeviceCmd::List) => school::device_list(ctx),
        Command::Device(DeviceCmd::Revoke { device }) => school::device_revoke(ctx, device),
        Command::Member(MemberCmd::Deactivate { name }) => school::member_deactivate(ctx, name),
        Command::Device(DeviceCmd::Lost { device }) => privacy::device_lost(ctx, device),
        Command::Quarantine => bundle::quarantine(ctx),
        Command::Audit(args) => bundle::audit(ctx, args),
        Command::Consent(ConsentCmd::Record {
            child,
            guardian,
            relation,
            date,
            covers,
            form,
        }) => privacy::consent_record(
            ctx,
            child,
            &shouwang_core::archive::ConsentInput {
                guardian: guardian.clone(),
                relation: relation.clone(),
                date: date.clone(),
                covers: covers.clone(),
                form: form.clone(),
            },
        ),
        Command::Consent(ConsentCmd::Withdraw {
            child,
            date,
            by,
            covers,
        }) => privacy::consent_withdraw(
            ctx,
            child,
            &shouwang_core::archive::WithdrawalInput {
                date: date.clone(),
                by: by.clone(),
                covers: covers.clone(),
            },
        ),
        Command::Consent(ConsentCmd::Require) => privacy::consent_require(ctx),
        Command::Consent(ConsentCmd::Show { child }) => privacy::consent_show(ctx, child),
        Command::School(SchoolCmd::PrivacyOfficer { name, phone }) => {
            privacy::privacy_officer(ctx, name, phone)
        }
        Command::School(SchoolCmd::Split) => school::split(ctx),
        Command::Demo(a) => demo::run(ctx, a.dir.as_deref()),
    }
}

/// The store key in a key file (see `shouwang_relay::keyfile`), which must exist.
fn read_key(path: &std::path::Path) -> std::result::Result<StoreKey, String> {
    match shouwang_relay::keyfile::read(path) {
        Ok(Some(bytes)) => StoreKey::from_bytes(&bytes).map_err(|e| e.to_string()),
        Ok(None) => Err(format!("找不到密钥文件 {}", path.display())),
        Err(e) => Err(e.to_string()),
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return shouwang_relay::usage::report(&e, "shouwang"),
    };
    // `init-school` with a key file that does not exist yet makes one (`school::init_school`).
    let new_key_file = cli
        .key_file
        .clone()
        .filter(|p| matches!(cli.command, Command::InitSchool(_)) && !p.exists());
    let key = match cli
        .key_file
        .as_deref()
        .filter(|_| new_key_file.is_none())
        .map(read_key)
    {
        None => None,
        Some(Ok(key)) => Some(key),
        Some(Err(msg)) => {
            eprintln!("错误：{msg}");
            return ExitCode::FAILURE;
        }
    };
    let connect_timeout = match cli.connect_timeout() {
        Ok(t) => t,
        Err(msg) => {
            eprintln!("错误：{msg}");
            return ExitCode::FAILURE;
        }
    };
    let mut ctx = Ctx {
        connect_timeout,
        store: cli.store_path(),
        key,
        new_key_file,
        json: cli.json,
        out: Box::new(BufWriter::new(std::io::stdout())),
        command: commands::command_line(std::env::args().skip(1)),
    };
    let result = dispatch(&mut ctx, &cli.command).and_then(|()| Ok(ctx.out.flush()?));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is_broken_pipe() => ExitCode::SUCCESS,
        Err(e) => {
            let _ = ctx.out.flush();
            let msg = e.to_string().replace(['\r', '\n'], " ");
            eprintln!("错误：{}{}", msg.trim(), commands::command_for(&msg));
            ExitCode::FAILURE
        }
    }
}
