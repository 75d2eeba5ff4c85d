//! `signed_records`: operations of a fixed group's members become validly signed records
//! (some deliberately broken), fed to two replicas in different orders and batches.

use std::time::Duration;

use arbitrary::{Arbitrary, Unstructured};
use peergroup_credential_roles::RevocationTarget;
use peergroup_identity::Timestamp;
use peergroup_record_db::reserved::{GroupProperties, MembershipPayload, RevocationPayload};
use peergroup_record_db::store::MemoryStore;
use peergroup_record_db::{Database, LocalSigner, NewRecord, Received, Record, RecordType};

use super::fixture::{
    Attrs, Corruption, Fixture, Kind, Life, Payload, T0, Who, new_record, next_version, sign,
};

/// Most operations read from one input (each signs at most one record).
const MAX_OPS: usize = 16;

/// Whether a batch may hold two versions of one record. Yes since record-db tries the
/// versions of an id from the greatest down and keeps the first accepted (`db/apply.rs`,
/// `stage`): it used to keep only the best version of each id before validating it, so a
/// broken or refused version that outranked a valid one hid it (found by this target).
/// With `false`, batches are split before a second version of an id.
const SAME_ID_IN_A_BATCH: bool = true;

/// Whether property changes may change the maximum record size. Yes since a receiver holds
/// a record to `MAX_RECORD_SIZE_LIMIT` only and the group's maximum binds local changes
/// (record-db `validate.rs`, `db/local.rs`): a receiver used to check a record's size
/// against the properties it held when the record arrived, so a record over a new, smaller
/// limit was kept by a replica that got it before the properties and refused by one that
/// got it after (found by this target). With `false`, the maximum stays the default.
const CHANGE_MAX_RECORD_SIZE: bool = true;

/// Whether an admin may revoke itself. Yes since record-db judges revocation records
/// without the revocations and never purges them (`validate.rs`,
/// `judged_without_revocations`): a revocation whose own signer it revoked was kept by the
/// replica that took it in but purged by one that took in a later revocation, and stayed in
/// force in memory either way (found by this target). With `false`, no admin revokes itself.
const REVOKE_SELF: bool = true;

/// Whether members try to delete membership records. Yes since record-db refuses those
/// deletes everywhere (`validate.rs`, `admit`): a replica that took in a membership record
/// before its tombstone learned the member (in memory only: not after a restart), one that
/// got the tombstone first never did, so the member's records were stored by the one and
/// held back for good by the other (found by this target). With `false`, no membership
/// record is deleted.
const DELETE_MEMBERSHIP: bool = true;

/// What the members do, in the order they do it.
#[derive(Arbitrary, Debug)]
enum Op {
    /// A new record.
    Create {
        by: Who,
        kind: Kind,
        attrs: Attrs,
        payload: Payload,
        life: Life,
        autorefresh: bool,
    },
    /// A new version of a record made before (any version, so versions may conflict).
    Update {
        by: Who,
        base: u8,
        step: u8,
        attrs: Option<Attrs>,
        payload: Option<Payload>,
        life: Option<Life>,
    },
    /// A tombstone for a record made before.
    Delete { by: Who, base: u8, step: u8 },
    /// A membership record publishing `of`'s chain, signed by `by`.
    Membership { by: Who, of: Who, life: Life },
    /// A revocation.
    Revoke { by: Who, target: Revoke },
    /// New group properties.
    Properties { by: Who, props: Props },
    /// The authoring clock moves on (seconds).
    Tick(u16),
    /// A broken copy of a record made before.
    Corrupt { base: u8, how: Corruption },
}

#[derive(Arbitrary, Clone, Copy, Debug)]
enum Revoke {
    Peer(Who),
    Serial(Who),
    /// A payload that is not a revocation.
    Junk(u8),
}

#[derive(Arbitrary, Clone, Copy, Debug)]
struct Props {
    flags: u8,
    max_record_size: u8,
    presence_minutes: u8,
    member_data_hours: u16,
    /// Name another creator (refused: the creator is immutable).
    other_creator: bool,
}

/// How the second replica receives the records: each step takes one of the records not yet
/// given; its flags end the batch after it, give it once more later, and check the batch's
/// signatures as a connection's reader would.
#[derive(Arbitrary, Debug)]
struct Step {
    pick: u8,
    flags: u8,
}

/// A record as fed, and whether it was broken on purpose (then no replica may store it).
struct Fed {
    record: Record,
    broken: bool,
}

/// The author: a clock and everything signed so far.
struct Author<'f> {
    f: &'f Fixture,
    clock: Timestamp,
    fed: Vec<Fed>,
    nonce: u64,
    properties: Option<Record>,
}

impl<'f> Author<'f> {
    fn next_nonce(&mut self) -> [u8; 8] {
        self.nonce += 1;
        self.nonce.to_be_bytes()
    }

    fn push(&mut self, record: Record, broken: bool) {
        self.fed.push(Fed { record, broken });
    }

    fn base(&self, i: u8) -> Option<&Record> {
        match self.fed.len() {
            0 => None,
            n => Some(&self.fed[usize::from(i) % n].record),
        }
    }

    fn apply(&mut self, op: Op) {
        let f = self.f;
        let at = self.clock;
        match op {
            Op::Create {
                by,
                kind,
                attrs,
                payload,
                life,
                autorefresh,
            } => {
                let by = f.member(by);
                let nonce = self.next_nonce();
                let mut r = new_record(f, by, kind.record_type(f), nonce, at, life.expires(at, by));
                r.attributes = attrs.xml();
                r.payload = payload.bytes();
                r.flags = r.flags.with_autorefresh(autorefresh);
                sign(&mut r, &by.key, &f.group);
                self.push(r, false);
            }
            Op::Update {
                by,
                base,
                step,
                attrs,
                payload,
                life,
            } => {
                let by = f.member(by);
                let Some(mut r) = self.base(base).and_then(|b| next_version(b, by, step, at))
                else {
                    return;
                };
                r.flags = r.flags.with_deleted(false);
                if let Some(a) = attrs {
                    r.attributes = a.xml();
                }
                if let Some(p) = payload {
                    r.payload = p.bytes();
                }
                if let Some(l) = life {
                    r.expires = l.expires(r.last_modified, by);
                }
                sign(&mut r, &by.key, &f.group);
                self.push(r, false);
            }
            Op::Delete { by, base, step } => {
                if !DELETE_MEMBERSHIP
                    && self
                        .base(base)
                        .is_some_and(|b| b.record_type == RecordType::MEMBERSHIP)
                {
                    return;
                }
                let by = f.member(by);
                let Some(mut r) = self.base(base).and_then(|b| next_version(b, by, step, at))
                else {
                    return;
                };
                r.flags = r.flags.with_deleted(true);
                r.payload.clear();
                r.attributes.clear();
                sign(&mut r, &by.key, &f.group);
                self.push(r, false);
            }
            Op::Membership { by, of, life } => {
                let (by, of) = (f.member(by), f.member(of));
                let nonce = [0; 8];
                let mut r = new_record(
                    f,
                    by,
                    RecordType::MEMBERSHIP,
                    nonce,
                    at,
                    life.expires(at, by),
                );
                r.id = MembershipPayload::record_id(by.peer(), of.chain.leaf().serial());
                r.payload = MembershipPayload::new(&of.chain).to_payload();
                sign(&mut r, &by.key, &f.group);
                self.push(r, false);
            }
            Op::Revoke { by, target } => {
                if !REVOKE_SELF
                    && let Revoke::Peer(w) | Revoke::Serial(w) = target
                    && f.member(w).peer() == f.member(by).peer()
                {
                    return;
                }
                let by = f.member(by);
                let payload = match target {
                    Revoke::Peer(w) => RevocationPayload {
                        target: RevocationTarget::Peer(f.member(w).peer().clone()),
                        reason: String::new(),
                    }
                    .to_payload(),
                    Revoke::Serial(w) => RevocationPayload {
                        target: RevocationTarget::Serial(f.member(w).serial()),
                        reason: "fuzz".into(),
                    }
                    .to_payload(),
                    Revoke::Junk(b) => vec![1, b, b],
                };
                let nonce = self.next_nonce();
                let mut r = new_record(f, by, RecordType::REVOCATION, nonce, at, by.not_after());
                r.payload = payload;
                sign(&mut r, &by.key, &f.group);
                self.push(r, false);
            }
            Op::Properties { by, props } => {
                let signer = f.member(by);
                let admin = f.member(Who::Admin).peer().clone();
                let mut p = GroupProperties::new("Fuzz group", admin.clone());
                if props.other_creator {
                    p.creator = signer.peer().clone();
                }
                p.flags = u32::from(props.flags & 0x7);
                p.max_record_size = match props.max_record_size % 4 {
                    _ if !CHANGE_MAX_RECORD_SIZE => GroupProperties::DEFAULT_MAX_RECORD_SIZE,
                    0 => GroupProperties::DEFAULT_MAX_RECORD_SIZE,
                    1 => 1024,
                    2 => 2048,
                    _ => u32::from(props.max_record_size) * 16,
                };
                p.presence_lifetime_secs = 60 * u32::from(props.presence_minutes);
                p.member_data_lifetime_secs = 3600 * u32::from(props.member_data_hours);
                let r = match self.properties.take() {
                    None => {
                        let mut r = new_record(
                            f,
                            signer,
                            RecordType::GROUP_PROPERTIES,
                            *b"grpprops",
                            at,
                            signer.not_after(),
                        );
                        // The properties record's id is the creator's, whoever signs.
                        r.id = GroupProperties::record_id(&admin);
                        r.creator = admin;
                        r
                    }
                    Some(old) => {
                        let Some(r) = next_version(&old, signer, 0, at) else {
                            return;
                        };
                        r
                    }
                };
                let mut r = r;
                r.payload = p.to_payload();
                sign(&mut r, &signer.key, &f.group);
                self.properties = Some(r.clone());
                self.push(r, false);
            }
            Op::Tick(secs) => self.clock = at.saturating_add(Duration::from_secs(secs.into())),
            Op::Corrupt { base, how } => {
                let nonce = self.nonce as u8;
                // Only records signed as made are broken: breaking a broken one again may
                // mend it (flip a byte back, sign again with the right key).
                let intact: Vec<&Record> = self
                    .fed
                    .iter()
                    .filter(|x| !x.broken)
                    .map(|x| &x.record)
                    .collect();
                let base = match intact.len() {
                    0 => None,
                    n => intact.get(usize::from(base) % n).copied(),
                };
                if let Some(r) = base.and_then(|b| how.apply(f, b, nonce)) {
                    self.nonce += 1;
                    self.push(r, true);
                }
            }
        }
    }
}

/// Members' operations signed with the fixture's keys: records created, updated and deleted
/// by members (conflicting versions included), membership records, revocations and property
/// changes, some broken after signing (a flipped byte, a wrong key or signer, another
/// group, an expired or not yet valid chain). Two replicas get them all: one in the order
/// they were made, in chunks; the other in an order and batches the input picks, some twice,
/// some batches with their signatures checked ahead as a connection's reader does.
///
/// Checks: nothing panics and no apply fails (the stores are in memory); a broken record is
/// never stored and every record reported accepted is stored; both replicas end with the
/// same digest — at once when no revocation purged a record, after a sync round between them
/// otherwise — which giving everything again does not change; after a sweep no expired
/// record is left and the digests still agree; a record one replica then makes locally the
/// other accepts.
pub fn signed_records(data: &[u8]) {
    let Some(f) = Fixture::get() else { return };
    let mut u = Unstructured::new(data);
    let Ok(input) = Input::read(&mut u) else {
        return;
    };
    let mut author = Author {
        f,
        clock: T0.saturating_add(Duration::from_secs(60)),
        fed: Vec::new(),
        nonce: 0,
        properties: None,
    };
    for op in input.ops {
        author.apply(op);
    }
    let fed = author.fed;
    if fed.is_empty() {
        return;
    }
    let now = author
        .clock
        .saturating_add(Duration::from_secs(input.receive_after.into()));
    let (Some(mut a), Some(mut b)) = (replica(f), replica(f)) else {
        return;
    };
    // Replica A: in the order they were made, in chunks.
    let chunk = 1 + usize::from(input.a_chunk) % fed.len();
    let all: Vec<usize> = (0..fed.len()).collect();
    let mut purged = false;
    for part in all.chunks(chunk) {
        purged |= feed(&mut a, &fed, part, false, now);
    }
    // Replica B: in the input's order and batches.
    let mut left: Vec<usize> = (0..fed.len()).collect();
    let mut again = Vec::new();
    let mut batch = Vec::new();
    let mut steps = input.steps.into_iter();
    while !left.is_empty() {
        let (i, flags) = match steps.next() {
            Some(s) => (left.remove(usize::from(s.pick) % left.len()), s.flags),
            None => (left.remove(0), 0),
        };
        batch.push(i);
        if flags & 2 != 0 {
            again.push(i);
        }
        if flags & 1 != 0 || left.is_empty() {
            batch.append(&mut again);
            purged |= feed(&mut b, &fed, &batch, flags & 4 != 0, now);
            batch.clear();
        }
    }
    // Without a purge, the order of delivery makes no difference at all. A purge takes its
    // record's id with it, so a replica that had replaced a valid version with a purged one
    // lacks the valid one until a sync brings it back (docs/protocol.md, Revocation).
    if !purged {
        converged(&a, &b, &fed, "after delivery");
    }
    sync_round(&mut a, &mut b, now);
    converged(&a, &b, &fed, "after delivery and a sync round");
    // Everything again changes nothing — unless a purge took a replaced valid version from
    // both: then giving it again brings it back, to both, and a second time changes nothing.
    let digest = b.digest();
    feed(&mut b, &fed, &all, true, now);
    if purged {
        feed(&mut a, &fed, &all, false, now);
        converged(&a, &b, &fed, "after everything again");
        let digest = b.digest();
        feed(&mut b, &fed, &all, true, now);
        assert_eq!(
            b.digest(),
            digest,
            "giving every record a second time changed a replica"
        );
    } else {
        assert_eq!(
            b.digest(),
            digest,
            "giving every record again changed a replica"
        );
    }
    // Time passes; expired records go.
    let later = now.saturating_add(Duration::from_secs(u64::from(input.sweep_after) * 10));
    for db in [&mut a, &mut b] {
        let swept = db.sweep(later);
        assert!(swept.is_ok(), "sweep failed: {swept:?}");
        let mut expired = None;
        let each = db.for_each(&mut |r| {
            if r.expires <= later {
                expired = Some(r.id);
            }
        });
        assert!(
            each.is_ok() && expired.is_none(),
            "{expired:?} outlived a sweep"
        );
    }
    converged(&a, &b, &fed, "after a sweep");
    local_record_is_accepted(f, &mut a, &mut b, &input.local, later);
}

/// The parts of an input.
struct Input {
    ops: Vec<Op>,
    a_chunk: u8,
    receive_after: u16,
    sweep_after: u16,
    local: (Who, Kind, Attrs, Payload),
    steps: Vec<Step>,
}

impl Input {
    fn read(u: &mut Unstructured<'_>) -> arbitrary::Result<Self> {
        let a_chunk = u.arbitrary()?;
        let receive_after = u.arbitrary()?;
        let sweep_after = u.arbitrary()?;
        let local = u.arbitrary()?;
        let mut ops = Vec::new();
        let mut steps = Vec::new();
        // Operations until a zero byte (or the end), then delivery steps.
        while ops.len() < MAX_OPS && !u.is_empty() && u.arbitrary::<u8>()? != 0 {
            ops.push(u.arbitrary()?);
        }
        while steps.len() < 64 && !u.is_empty() {
            steps.push(u.arbitrary()?);
        }
        Ok(Input {
            ops,
            a_chunk,
            receive_after,
            sweep_after,
            local,
            steps,
        })
    }
}

/// A fresh replica knowing the members every replica starts with.
fn replica(f: &Fixture) -> Option<Database<MemoryStore>> {
    let mut db = Database::open(MemoryStore::new(), &f.root).ok()?;
    db.adopt_members(&f.known);
    Some(db)
}

/// Applies the records `picks` to `db` in one batch (their signatures checked ahead with
/// `precheck`), or in several where [`SAME_ID_IN_A_BATCH`] says so.
fn feed(
    db: &mut Database<MemoryStore>,
    fed: &[Fed],
    picks: &[usize],
    precheck: bool,
    now: Timestamp,
) -> bool {
    let mut purged = false;
    let mut start = 0;
    for end in 1..=picks.len() {
        let split = end == picks.len()
            || (!SAME_ID_IN_A_BATCH
                && picks[start..end]
                    .iter()
                    .any(|&i| fed[i].record.id == fed[picks[end]].record.id));
        if split {
            purged |= feed_batch(db, fed, &picks[start..end], precheck, now);
            start = end;
        }
    }
    purged
}

/// Applies the records `picks` to `db` in one batch, then checks what the report says
/// against what is stored. Returns whether a revocation purged a stored record.
fn feed_batch(
    db: &mut Database<MemoryStore>,
    fed: &[Fed],
    picks: &[usize],
    precheck: bool,
    now: Timestamp,
) -> bool {
    let records: Vec<Record> = picks.iter().map(|&i| fed[i].record.clone()).collect();
    let batch: Vec<Received> = if precheck {
        db.signer_keys().check(records)
    } else {
        records.into_iter().map(Received::unchecked).collect()
    };
    let report = db.apply_received(batch, now);
    assert!(
        report.is_ok(),
        "applying to a memory store failed: {report:?}"
    );
    let Ok(report) = report else { return false };
    for r in report.accepted() {
        assert!(
            db.contains_key(r.item_key()),
            "accepted but not stored: {r:?}"
        );
    }
    for x in fed.iter().filter(|x| x.broken) {
        let stored = db.get_any(x.record.id).ok().flatten();
        assert!(
            stored.as_ref() != Some(&x.record),
            "a broken record was stored: {:?}",
            x.record
        );
    }
    !report.purged.is_empty()
}

/// Each replica is offered every record the other holds, as a sync between them would.
fn sync_round(a: &mut Database<MemoryStore>, b: &mut Database<MemoryStore>, now: Timestamp) {
    let held = |db: &Database<MemoryStore>| {
        let mut out = Vec::new();
        let _ = db.for_each(&mut |r| out.push(Received::unchecked(r)));
        out
    };
    let (from_a, from_b) = (held(a), held(b));
    for (db, records) in [(a, from_b), (b, from_a)] {
        let report = db.apply_received(records, now);
        assert!(report.is_ok(), "a sync round failed: {report:?}");
    }
}

/// The two replicas hold the same records.
fn converged(a: &Database<MemoryStore>, b: &Database<MemoryStore>, fed: &[Fed], when: &str) {
    assert!(
        a.digest() == b.digest(),
        "replicas diverged {when}: {}",
        difference(a, b, fed)
    );
}

/// What one replica holds and the other does not, for a failure message.
fn difference(a: &Database<MemoryStore>, b: &Database<MemoryStore>, fed: &[Fed]) -> String {
    let stored = |db: &Database<MemoryStore>| {
        let mut out = Vec::new();
        let _ = db.for_each(&mut |r| out.push(r));
        out.sort_by_key(|r| r.id);
        out
    };
    let (sa, sb) = (stored(a), stored(b));
    let only = |x: &[Record], y: &[Record]| -> Vec<String> {
        x.iter()
            .filter(|r| !y.contains(r))
            .map(|r| {
                let i = fed.iter().position(|x| &x.record == r);
                format!("#{i:?} {} v{} {}", r.id, r.version, r.record_type)
            })
            .collect()
    };
    format!(
        "only in the one fed in order: {:?}; only in the other: {:?}",
        only(&sa, &sb),
        only(&sb, &sa)
    )
}

/// A record replica A makes locally (by a member both replicas know) is accepted by B,
/// which holds the same records.
fn local_record_is_accepted(
    f: &Fixture,
    a: &mut Database<MemoryStore>,
    b: &mut Database<MemoryStore>,
    local: &(Who, Kind, Attrs, Payload),
    now: Timestamp,
) {
    let (who, kind, attrs, payload) = local;
    let who = match who {
        Who::Admin | Who::Bob | Who::Carol => Who::Admin,
        _ => Who::Alice,
    };
    let m = f.member(who);
    let new = NewRecord {
        record_type: kind.record_type(f),
        attributes: attrs.xml(),
        payload: payload.bytes(),
        expires: now.saturating_add(Duration::from_secs(3600)),
        autorefresh: false,
    };
    let signer = LocalSigner {
        key: &m.key,
        chain: &m.chain,
    };
    let Ok(change) = a.create(signer, new, now) else {
        return;
    };
    let report = b.apply(vec![change.record.clone()], now);
    let accepted = report
        .as_ref()
        .is_ok_and(|r| r.accepted().iter().any(|x| x == &change.record));
    assert!(
        accepted,
        "a record made by one replica was refused by the other: {:?} {report:?}",
        change.record
    );
}
