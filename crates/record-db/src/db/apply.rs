//! Applying records received from other members: validate, merge, store in one commit.

use std::cmp::Ordering;
use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};

use peergroup_identity::{PublicKey, Signature, Timestamp, verify_batch};

use super::{Change, ChangeKind, Database, Received};
use crate::error::{Error, ValidationError};
use crate::merge::{Novelty, compare, novelty};
use crate::record::{Record, RecordId};
use crate::reserved::GroupProperties;
use crate::store::{Batch, DeferredEntry, Store};
use crate::validate::{self, Effect, Resolution, Signer};

/// Data records checked with one batch signature verification.
const GROUP: usize = 256;

/// A batch being staged.
#[derive(Debug, Default)]
struct Staging {
    /// What the commit will write (`put` and `defer` are filled in at the end).
    batch: Batch,
    /// The winning version of each record so far, by id, with its item key.
    staged: BTreeMap<RecordId, (Record, u64)>,
    /// Whether the store held a live version of each id staged, before this batch: the change
    /// reported is judged against it, however many versions of the id the batch staged in
    /// turn (the version replaced went to [`ApplyReport::replaced`] when the first was).
    before: BTreeMap<RecordId, bool>,
    /// Records of this batch held back for an unknown signer, by content key.
    held: BTreeMap<u64, Record>,
}

/// The versions of one record id that a pass has to decide on.
#[derive(Debug)]
struct Versions {
    /// Whether they go with the security records (by the record type they carry).
    security: bool,
    /// The greatest version not yet tried (`None` only when none is left).
    greatest: Option<Received>,
    /// The other distinct versions in merge order, the greatest last: nearly always none,
    /// and then nothing is allocated for them.
    lower: Vec<Received>,
}

impl Versions {
    /// How many versions are left.
    fn len(&self) -> usize {
        usize::from(self.greatest.is_some()) + self.lower.len()
    }

    /// Whether none is left.
    fn is_empty(&self) -> bool {
        self.greatest.is_none()
    }
}

/// What became of one record given to [`Database::apply_group`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    /// Staged: the greatest version of its id so far.
    Staged,
    /// Not needed: the same or an older version than the one held (stored or staged); a
    /// lower version of its id would not be needed either.
    Settled,
    /// Refused, or held back until its signer is known: the next lower version of its id,
    /// if the batch has one, is tried.
    Passed,
}

/// Groups records by id (security records first, as [`Database::apply_pass`] takes them;
/// then by id), each id's distinct versions in merge order; copies of a record already given
/// count as duplicates. Versions that compare equal but differ (a forgery of a valid
/// version's fields) are all kept: they are tried in turn, the first accepted stays.
///
/// Sorts positions rather than records, and allocates nothing per id that has one version
/// (a map of vectors by id was ~1% of a receiving node's CPU time).
fn versions_by_id(records: Vec<Received>, report: &mut ApplyReport) -> Vec<Versions> {
    let mut order: Vec<(bool, RecordId, usize)> = records
        .iter()
        .enumerate()
        .map(|(i, r)| (!r.record().record_type.is_security(), r.record().id, i))
        .collect();
    // By position last: copies of an id keep the order they came in.
    order.sort_unstable();
    let mut slots: Vec<Option<Received>> = records.into_iter().map(Some).collect();
    let mut out: Vec<Versions> = Vec::with_capacity(order.len());
    let mut at = 0;
    while let Some(&(data, id, _)) = order.get(at) {
        let same = order[at..]
            .iter()
            .take_while(|(d, i, _)| *d == data && *i == id)
            .count();
        let mut take = |&(_, _, i): &(bool, RecordId, usize)| slots.get_mut(i)?.take();
        if same == 1 {
            out.push(Versions {
                security: !data,
                greatest: take(&order[at]),
                lower: Vec::new(),
            });
            at += 1;
            continue;
        }
        let mut ascending: Vec<Received> =
            order[at..at + same].iter().filter_map(&mut take).collect();
        at += same;
        // Ties broken by the encoding, so copies of a record end up side by side.
        ascending.sort_by(|a, b| {
            compare(a.record(), b.record()).then_with(|| {
                crate::codec::encode(a.record()).cmp(&crate::codec::encode(b.record()))
            })
        });
        let before = ascending.len();
        ascending.dedup_by(|a, b| a.record() == b.record());
        report.duplicates += before - ascending.len();
        let greatest = ascending.pop();
        out.push(Versions {
            security: !data,
            greatest,
            lower: ascending,
        });
    }
    out
}

/// Where records being applied come from, which decides whether their signatures are
/// checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Origin {
    /// From another member or from outside: every signature is checked.
    Received,
    /// Signed a moment ago by this member's own key (`local.rs`, which builds and signs them
    /// itself): everything but the signature is checked. Checking our own fresh signature
    /// costs as much as checking a received one and cannot fail short of a hardware fault.
    SignedHere,
}

/// What [`Database::apply`] did with a batch of received records.
#[derive(Debug, Default)]
pub struct ApplyReport {
    /// Records that were new or newer here and are now stored (security records first).
    accepted: Vec<Record>,
    /// One for each record staged, in the order of the batch's `put` (then of `accepted`):
    /// its item key and the change it makes. Kept beside the records, not with copies of
    /// them: a copy of each record for its change and its drop were ~2% of a receiving
    /// node's CPU time, and maps by id ~1.5% (`cargo bench -p peergroup-benches --bench
    /// network -- network/flood_1KiB`).
    stored: Vec<Stored>,
    /// Our versions that beat what was received: send them back to the sender.
    pub stale: Vec<Record>,
    /// Records we already had exactly.
    pub duplicates: usize,
    /// Records of the batch now held until their signer's membership record arrives
    /// (their signatures cannot be checked before: see [`crate::MAX_DEFERRED_BYTES`] and the
    /// other bounds of the deferred table).
    pub deferred: usize,
    /// Records of the batch whose signer is unknown that the deferred table's bounds left
    /// out: they expire before everything it holds for their claimed signer or overall.
    pub deferred_dropped: Vec<RecordId>,
    /// Records held from earlier batches that the bounds dropped to make room for records
    /// of this batch expiring later.
    pub deferred_evicted: usize,
    /// Records refused, with why.
    pub rejected: Vec<(RecordId, ValidationError)>,
    /// Records removed because a revocation in this batch made them invalid.
    pub purged: Vec<Record>,
    /// Versions that accepted records replaced.
    pub replaced: Vec<Record>,
}

/// What a batch did with one record it stores.
#[derive(Clone, Copy, Debug)]
struct Stored {
    id: RecordId,
    /// The record's item key, as it came ([`Received::item_key`]).
    key: u64,
    /// What it changes for the application: nothing for a tombstone of a record not held.
    change: Option<ChangeKind>,
}

impl ApplyReport {
    /// Records that were new or newer here and are now stored (security records first):
    /// pass them on to other neighbors ([`ApplyReport::accepted_keyed`] gives their item
    /// keys), then take the changes they make ([`ApplyReport::take_changes`]).
    pub fn accepted(&self) -> &[Record] {
        &self.accepted
    }

    /// [`ApplyReport::accepted`], each with its [`Record::item_key`] (computed where the
    /// record arrived, not again).
    pub fn accepted_keyed(&self) -> impl Iterator<Item = (&Record, u64)> {
        self.accepted
            .iter()
            .zip(&self.stored)
            .map(|(r, s)| (r, s.key))
    }

    /// What the batch changed for the application about record `id`, if anything (a scan of
    /// the batch).
    pub fn change_of(&self, id: &RecordId) -> Option<ChangeKind> {
        self.stored.iter().find(|s| s.id == *id)?.change
    }

    /// How many changes the batch makes for the application.
    pub fn changes_len(&self) -> usize {
        self.stored.iter().filter(|s| s.change.is_some()).count()
    }

    /// The changes to report to the application, in the order of
    /// [`ApplyReport::accepted`], whose records they take: nothing is accepted after (pass
    /// the records on first).
    pub fn take_changes(&mut self) -> Vec<Change> {
        let stored = std::mem::take(&mut self.stored);
        std::mem::take(&mut self.accepted)
            .into_iter()
            .zip(stored)
            .filter_map(|(record, s)| {
                Some(Change {
                    kind: s.change?,
                    record,
                })
            })
            .collect()
    }

    /// Sets the records stored, `put` of the batch staged with this report (in its order).
    pub(super) fn set_accepted(&mut self, put: Vec<Record>) {
        debug_assert!(
            put.len() == self.stored.len()
                && put.iter().zip(&self.stored).all(|(r, s)| r.id == s.id),
            "the records stored are not those staged"
        );
        self.accepted = put;
    }
}

impl<S: Store> Database<S> {
    /// Validates and merges records received from other members, committing everything in
    /// one durable transaction (group commit). Security records are handled first; records
    /// whose signer is unknown are deferred (stored aside, retried when a membership record
    /// arrives), never stored as valid.
    ///
    /// Each record gets its own verdict: a bad record is reported in
    /// [`ApplyReport::rejected`] with its reason and changes nothing else; the good records
    /// of the batch are stored. An `Err` is a local failure (the store): then nothing of the
    /// batch was committed and the in-memory state (members, revocations, properties, keys)
    /// is what it was before the call.
    pub fn apply(&mut self, records: Vec<Record>, now: Timestamp) -> Result<ApplyReport, Error> {
        let records = records.into_iter().map(Received::unchecked).collect();
        self.apply_received(records, now)
    }

    /// [`Database::apply`] for records whose signatures may have been checked already, as
    /// they arrived ([`SignerKeys::check`](super::SignerKeys::check)): a signature is
    /// skipped only when it was found good under the key of the member the record's signer
    /// resolves to here; everything else is checked as usual.
    pub fn apply_received(
        &mut self,
        records: Vec<Received>,
        now: Timestamp,
    ) -> Result<ApplyReport, Error> {
        let staged = self.stage(records, now, Origin::Received);
        let (mut report, batch) = match staged {
            Ok(staged) => staged,
            Err(e) => {
                self.abandon();
                return Err(e);
            }
        };
        let put = self.commit_staged(&report, batch)?;
        report.set_accepted(put);
        // Usually in order already (a batch of data records): then nothing to move.
        if !report
            .accepted
            .is_sorted_by_key(|r| !r.record_type.is_security())
        {
            let mut both: Vec<(Record, Stored)> = std::mem::take(&mut report.accepted)
                .into_iter()
                .zip(std::mem::take(&mut report.stored))
                .collect();
            both.sort_by_key(|(r, _)| !r.record_type.is_security());
            (report.accepted, report.stored) = both.into_iter().unzip();
        }
        Ok(report)
    }

    /// [`Database::apply`] for an import: when `partial` is false and any record is refused
    /// (invalid, or left out by the deferred table's bounds), nothing is committed and the
    /// in-memory state is left as it was. Returns the report and whether it was committed.
    pub(crate) fn apply_import(
        &mut self,
        records: Vec<Record>,
        now: Timestamp,
        partial: bool,
    ) -> Result<(ApplyReport, bool), Error> {
        let records = records.into_iter().map(Received::unchecked).collect();
        let (mut report, batch) = match self.stage(records, now, Origin::Received) {
            Ok(staged) => staged,
            Err(e) => {
                self.abandon();
                return Err(e);
            }
        };
        if !partial && (!report.rejected.is_empty() || !report.deferred_dropped.is_empty()) {
            self.abandon();
            report.set_accepted(batch.put);
            return Ok((report, false));
        }
        let put = self.commit_staged(&report, batch)?;
        report.set_accepted(put);
        Ok((report, true))
    }

    /// Validates and merges `records` into a batch without writing anything. What the batch
    /// taught the in-memory state (members, revocations, properties) is kept by
    /// [`Database::commit_staged`] and undone by [`Database::abandon`]: the caller calls one
    /// of them, whatever this returns.
    pub(super) fn stage(
        &mut self,
        records: Vec<Received>,
        now: Timestamp,
        origin: Origin,
    ) -> Result<(ApplyReport, Batch), Error> {
        let mut report = ApplyReport::default();
        let mut st = Staging::default();
        let mut pending = versions_by_id(records, &mut report);
        // Each pass may learn members; then deferred records signed by them are retried.
        loop {
            let learned = self.apply_pass(pending, now, origin, &mut report, &mut st)?;
            let mut retried = Vec::new();
            let mut fetch = Vec::new();
            for serial in &learned {
                for key in self.deferred.keys_of(serial) {
                    self.deferred.remove(key);
                    match st.held.remove(&key) {
                        Some(r) => retried.push(Received::unchecked(r)),
                        None => fetch.push(key),
                    }
                }
            }
            if !fetch.is_empty() {
                retried.extend(
                    self.store
                        .deferred_by_keys(&fetch)?
                        .into_iter()
                        .map(Received::unchecked),
                );
                st.batch.undefer.extend(fetch);
            }
            if retried.is_empty() {
                break;
            }
            pending = versions_by_id(retried, &mut report);
        }
        report.deferred = st.held.len();
        let mut batch = st.batch;
        batch.defer = st.held.into_values().collect();
        (batch.put, report.stored) = st
            .staged
            .into_iter()
            .map(|(id, (record, key))| {
                let held_before = st.before.get(&id).copied().unwrap_or(false);
                let change = change_kind(held_before, &record);
                (record, Stored { id, key, change })
            })
            .unzip();
        Ok((report, batch))
    }

    /// Commits a staged batch durably and updates the key index; on failure nothing was
    /// written and what staging taught the in-memory state is undone. Returns the records
    /// stored (by id).
    pub(super) fn commit_staged(
        &mut self,
        report: &ApplyReport,
        batch: Batch,
    ) -> Result<Vec<Record>, Error> {
        if let Err(e) = self.store.commit(&batch) {
            self.abandon();
            return Err(e.into());
        }
        self.settle();
        for r in report.purged.iter().chain(&report.replaced) {
            self.keys.remove(&r.item_key());
        }
        // `stage` made the batch and the report's entries from the same records, in order.
        debug_assert_eq!(batch.put.len(), report.stored.len());
        for (r, s) in batch.put.iter().zip(&report.stored) {
            debug_assert_eq!(r.id, s.id);
            self.keys.insert(s.key, r.record_type.is_security(), &r.id);
        }
        Ok(batch.put)
    }

    /// One validation pass over the versions of each id (see [`versions_by_id`]): the
    /// greatest version of each is tried first and, while a version is refused or held
    /// back, the next one down, so a bad version refuses itself only and the replica keeps
    /// the greatest valid one, as one that got them one at a time does. Returns the serials
    /// of member chains learned.
    fn apply_pass(
        &mut self,
        mut versions: Vec<Versions>,
        now: Timestamp,
        origin: Origin,
        report: &mut ApplyReport,
        st: &mut Staging,
    ) -> Result<BTreeSet<Vec<u8>>, Error> {
        let mut learned = BTreeSet::new();
        // Security records change what later records are checked against: one at a time.
        // `versions_by_id` puts them first: the data records are split off without moving
        // the security ones (usually none: then nothing is moved at all).
        let first_data = versions.partition_point(|v| v.security);
        let data = if first_data == 0 {
            std::mem::take(&mut versions)
        } else {
            versions.split_off(first_data)
        };
        for (mut round, size) in [(versions, 1), (data, GROUP)] {
            // Each round tries the greatest version left of each id still undecided.
            while !round.is_empty() {
                let mut next = Vec::new();
                let mut ids = round.into_iter();
                while ids.len() > 0 {
                    let n = size.min(ids.len());
                    let mut heads = Vec::with_capacity(n);
                    // The lower versions of each head's id, each a (usually empty) list.
                    let mut rests = Vec::with_capacity(n);
                    for v in ids.by_ref().take(n) {
                        if let Some(head) = v.greatest {
                            heads.push(head);
                            rests.push((v.security, v.lower));
                        }
                    }
                    let (outcomes, serials) = self.apply_group(heads, now, origin, report, st)?;
                    learned.extend(serials);
                    for ((security, mut lower), outcome) in rests.into_iter().zip(outcomes) {
                        let rest = Versions {
                            security,
                            greatest: lower.pop(),
                            lower,
                        };
                        match outcome {
                            Outcome::Passed if !rest.is_empty() => next.push(rest),
                            // Lower versions of an id decided: as good as older.
                            _ => report.duplicates += rest.len(),
                        }
                    }
                }
                round = next;
            }
        }
        Ok(learned)
    }

    /// Validates a group of records (at most one version of each id) with one batch
    /// signature check and stages the winners. Returns what became of each record, in
    /// order, and the serials of the member chains learned.
    fn apply_group(
        &mut self,
        records: Vec<Received>,
        now: Timestamp,
        origin: Origin,
        report: &mut ApplyReport,
        st: &mut Staging,
    ) -> Result<(Vec<Outcome>, Vec<Vec<u8>>), Error> {
        // Refused or held back unless found otherwise.
        let mut outcomes = vec![Outcome::Passed; records.len()];
        let mut candidates: Vec<(Record, Signer, Option<Record>)> =
            Vec::with_capacity(records.len());
        let mut checked: Vec<Option<PublicKey>> = Vec::with_capacity(records.len());
        let mut positions: Vec<usize> = Vec::with_capacity(records.len());
        let mut keys: Vec<u64> = Vec::with_capacity(records.len());
        for (i, received) in records.into_iter().enumerate() {
            let (r, checked_with, key) = received.into_parts();
            let ctx = self.context(now);
            if let Err(e) = validate::check_structure(&r, &ctx) {
                report.rejected.push((r.id, e));
                continue;
            }
            let stored = match st.staged.get(&r.id) {
                Some((s, _)) => Some(s.clone()),
                None if self.keys.may_hold_id(&r.id) => self.store.get(&r.id)?,
                None => None,
            };
            let mut novelty = novelty(stored.as_ref(), &r);
            // A record made here never meets a stored version of its own number: a new record
            // on a stored id (or an update racing another) would otherwise replace the stored
            // version whenever it won the tie between equal versions (by signature).
            if origin == Origin::SignedHere
                && novelty == Novelty::Newer
                && stored.as_ref().is_some_and(|s| s.version >= r.version)
            {
                novelty = Novelty::Older;
            }
            match novelty {
                Novelty::Same => {
                    report.duplicates += 1;
                    outcomes[i] = Outcome::Settled;
                    continue;
                }
                Novelty::Older => {
                    if let Some(s) = stored {
                        report.stale.push(s);
                    }
                    outcomes[i] = Outcome::Settled;
                    continue;
                }
                Novelty::New | Novelty::Newer => {}
            }
            match validate::resolve_signer(&r, &ctx) {
                Ok(Resolution::Known(signer)) => {
                    checked.push(checked_with);
                    candidates.push((r, signer, stored));
                    positions.push(i);
                    keys.push(key);
                }
                Ok(Resolution::Defer) => self.defer(r, st, report),
                Err(e) => report.rejected.push((r.id, e)),
            }
        }
        let verdicts = match origin {
            Origin::Received => self.check_signatures(&candidates, &checked),
            Origin::SignedHere => candidates.iter().map(|_| Ok(())).collect(),
        };
        let mut learned = Vec::new();
        for ((((r, signer, stored), verdict), i), key) in candidates
            .into_iter()
            .zip(verdicts)
            .zip(positions)
            .zip(keys)
        {
            if verdict.is_err() {
                report.rejected.push((r.id, ValidationError::BadSignature));
                continue;
            }
            let ctx = self.context(now);
            let effect = match validate::admit(&r, &signer, &ctx) {
                Ok(effect) => effect,
                Err(e) => {
                    report.rejected.push((r.id, e));
                    continue;
                }
            };
            // Another version of this id may have been staged since the candidates were
            // picked, by this very group (versions retried together when their signer is
            // learned): the greater stays, whichever came first.
            if st
                .staged
                .get(&r.id)
                .is_some_and(|(s, _)| compare(&r, s) != Ordering::Greater)
            {
                report.duplicates += 1;
                outcomes[i] = Outcome::Settled;
                continue;
            }
            if let Some(serial) = self.absorb_security(effect, &r, st, report)? {
                learned.push(serial);
            }
            stage_winner(r, key, stored, st, report);
            outcomes[i] = Outcome::Staged;
        }
        Ok((outcomes, learned))
    }

    /// Holds back a record whose signer is unknown, within the deferred table's bounds:
    /// the earliest-expiring records go first, this one included.
    fn defer(&mut self, r: Record, st: &mut Staging, report: &mut ApplyReport) {
        let key = r.content_key();
        if self.deferred.contains(key) {
            report.duplicates += 1;
            return;
        }
        let admission = self.deferred.admit(DeferredEntry::of(&r));
        for k in admission.evicted {
            match st.held.remove(&k) {
                Some(dropped) => report.deferred_dropped.push(dropped.id),
                None => {
                    st.batch.undefer.push(k);
                    report.deferred_evicted += 1;
                }
            }
        }
        if admission.admitted {
            st.held.insert(key, r);
        } else {
            report.deferred_dropped.push(r.id);
        }
    }

    /// One batch signature check over the candidates (each against its resolved signer).
    /// Signatures found good as they arrived under the resolved signer's key are not checked
    /// again.
    fn check_signatures(
        &self,
        candidates: &[(Record, Signer, Option<Record>)],
        checked: &[Option<PublicKey>],
    ) -> Vec<Result<(), peergroup_identity::Error>> {
        let todo: Vec<bool> = candidates
            .iter()
            .zip(checked)
            .map(|((_, s, _), c)| c.as_ref() != Some(s.key()))
            .collect();
        let messages: Vec<Option<Vec<u8>>> = candidates
            .iter()
            .zip(&todo)
            .map(|((r, _, _), t)| t.then(|| r.signed_bytes(&self.group)))
            .collect();
        let items: Vec<(&[u8], &Signature, &PublicKey)> = candidates
            .iter()
            .zip(&messages)
            .filter_map(|((r, s, _), m)| Some((m.as_deref()?, &r.security.signature, s.key())))
            .collect();
        let mut verdicts = verify_batch(&items).into_iter();
        todo.into_iter()
            .map(|t| {
                if t {
                    // One verdict per item; were one missing, refuse rather than accept.
                    verdicts
                        .next()
                        .unwrap_or(Err(peergroup_identity::Error::BadSignature))
                } else {
                    Ok(())
                }
            })
            .collect()
    }

    /// Updates members, revocations and properties from an accepted security record (what
    /// [`validate::admit`] worked out: nothing here can refuse it). Returns the serial of
    /// the member chain learned. Only a store failure fails.
    fn absorb_security(
        &mut self,
        effect: Effect,
        r: &Record,
        st: &mut Staging,
        report: &mut ApplyReport,
    ) -> Result<Option<Vec<u8>>, Error> {
        match effect {
            Effect::None => Ok(None),
            Effect::Member(entry) => {
                self.before_security_change();
                let serial = entry.serial().to_vec();
                self.uncommitted
                    .keys
                    .push((serial.clone(), *entry.valid.key()));
                self.members.insert_validated(entry);
                Ok(Some(serial))
            }
            Effect::Revocation(target) => {
                self.before_security_change();
                self.revocations.insert(target, r.created);
                self.purge_revoked(st, report)?;
                Ok(None)
            }
            Effect::Properties(p) => {
                self.before_security_change();
                self.properties = Some(p);
                Ok(None)
            }
        }
    }

    /// Removes records whose signer was revoked before signing them (they may have arrived
    /// before the revocation did). Records signed before the revocation stay, and so do
    /// records of the types judged without revocations (revocation records: see
    /// [`validate::judged_without_revocations`]). A stored record whose id has a version
    /// staged is left to that version: the staged one replaces it, or is purged itself and
    /// takes the id with it. What memory took from a purged record goes with it.
    fn purge_revoked(&mut self, st: &mut Staging, report: &mut ApplyReport) -> Result<(), Error> {
        let revoked_by =
            |r: &Record,
             members: &crate::members::MemberIndex,
             rev: &peergroup_credential_roles::RevocationSet| {
                !validate::judged_without_revocations(&r.record_type)
                    && members.get(&r.security.modifier_serial).is_some_and(|c| {
                        matches!(
                            c.check_at(r.last_modified, rev),
                            Err(peergroup_credential_roles::ChainError::Revoked { .. })
                        )
                    })
            };
        let mut doomed = Vec::new();
        self.store.for_each(&mut |r| {
            if !st.staged.contains_key(&r.id) && revoked_by(&r, &self.members, &self.revocations) {
                doomed.push(r);
            }
        })?;
        st.staged.retain(|_, (r, _)| {
            if revoked_by(r, &self.members, &self.revocations) {
                doomed.push(r.clone());
                false
            } else {
                true
            }
        });
        let properties = GroupProperties::record_id(&self.creator);
        for r in doomed {
            if r.id == properties {
                // The group's properties are those of the record stored: none now.
                self.properties = None;
            }
            st.batch.remove.push(r.id);
            report.purged.push(r);
        }
        Ok(())
    }
}

/// Stages `r` (whose item key is `key`), the best version of its id so far; `stored` is what
/// the candidate was judged against (the store's version, or one staged earlier in the
/// batch). The version replaced is the store's: a version staged earlier in the batch and
/// now replaced was never stored, so it replaces nothing (and the change reported,
/// [`change_kind`], is the last version's).
fn stage_winner(
    r: Record,
    key: u64,
    stored: Option<Record>,
    st: &mut Staging,
    report: &mut ApplyReport,
) {
    if let Entry::Vacant(e) = st.before.entry(r.id) {
        // Nothing of this id staged yet: `stored` came from the store. A tombstone is not
        // held for the application: a record published again after it is added.
        e.insert(stored.as_ref().is_some_and(|s| !s.is_deleted()));
        if let Some(old) = stored {
            report.replaced.push(old);
        }
    }
    st.staged.insert(r.id, (r, key));
}

/// What storing `r` changes for the application, given whether the store held a live
/// version of its id before the batch: a deleted record held is deleted, a record not held is
/// added, a held one updated; a tombstone of a record not held changes nothing.
fn change_kind(held_before: bool, r: &Record) -> Option<ChangeKind> {
    match (held_before, r.is_deleted()) {
        (true, true) => Some(ChangeKind::Deleted),
        (false, true) => None,
        (false, false) => Some(ChangeKind::Added),
        (true, false) => Some(ChangeKind::Updated),
    }
}
