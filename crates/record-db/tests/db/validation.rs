//! Every validation failure of a received record, each as its own error.

use peergroup_credential_roles::{ChainError, RevocationTarget};
use peergroup_record_db::reserved::{GroupProperties, MAX_RECORD_SIZE_LIMIT, MembershipPayload};
use peergroup_record_db::{RecordFlags, RecordType, SignedRecords, ValidationError, codec};

use std::time::Duration;

use crate::support::*;

fn rejected(g: &Group, r: peergroup_record_db::Record) -> ValidationError {
    let mut db = g.replica();
    let report = db.apply(vec![r], t0().saturating_add(HOUR)).unwrap();
    assert!(
        report.accepted().is_empty(),
        "accepted: {:?}",
        report.accepted()
    );
    assert_eq!(db.len(), 0, "a rejected record was stored");
    report.rejected.into_iter().next().expect("not rejected").1
}

#[test]
fn a_good_record_is_accepted() {
    let g = Group::new();
    let mut db = g.replica();
    let r = forge(g.group(), &g.bob, |_| {});
    let report = db
        .apply(vec![r.clone()], t0().saturating_add(HOUR))
        .unwrap();
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    assert_eq!(db.get(r.id).unwrap(), Some(r));
}

#[test]
fn structure_rules() {
    let g = Group::new();
    let gp = g.group();
    assert_eq!(
        rejected(&g, forge(gp, &g.bob, |r| r.version = 0)),
        ValidationError::VersionZero
    );
    assert_eq!(
        rejected(
            &g,
            forge(gp, &g.bob, |r| r.flags = RecordFlags::from_bits(0x40))
        ),
        ValidationError::UnknownFlags(0x40)
    );
    assert!(matches!(
        rejected(&g, forge(gp, &g.bob, |r| r.expires = r.last_modified)),
        ValidationError::TimesOutOfOrder { .. }
    ));
    assert!(matches!(
        rejected(
            &g,
            forge(gp, &g.bob, |r| r.created =
                r.last_modified.saturating_add(HOUR))
        ),
        ValidationError::TimesOutOfOrder { .. }
    ));
    assert_eq!(
        rejected(
            &g,
            forge(gp, &g.bob, |r| r.flags =
                RecordFlags::default().with_deleted(true))
        ),
        ValidationError::DeletedWithData
    );
    // Over what any group may allow (the group's own limit binds records made locally).
    assert!(matches!(
        rejected(
            &g,
            forge(gp, &g.bob, |r| r.payload =
                vec![0; MAX_RECORD_SIZE_LIMIT as usize + 1])
        ),
        ValidationError::TooLarge { max, .. } if max == MAX_RECORD_SIZE_LIMIT as usize
    ));
    assert!(matches!(
        rejected(
            &g,
            forge(gp, &g.bob, |r| r.modified_by = Some(r.creator.clone()))
        ),
        ValidationError::ModifierMismatch { version: 1, .. }
    ));
    assert!(matches!(
        rejected(&g, forge(gp, &g.bob, |r| r.version = 2)),
        ValidationError::ModifierMismatch { version: 2, .. }
    ));
    assert!(matches!(
        rejected(
            &g,
            forge(gp, &g.bob, |r| r.last_modified =
                r.created.saturating_add(HOUR))
        ),
        ValidationError::ModifierMismatch { version: 1, .. }
    ));
    assert_eq!(
        rejected(
            &g,
            forge(gp, &g.bob, |r| r.security.creator_serial = vec![])
        ),
        ValidationError::BadSerial
    );
    assert!(matches!(
        rejected(
            &g,
            forge(gp, &g.bob, |r| r.attributes =
                "<attributes><oops/></attributes>".into())
        ),
        ValidationError::BadAttributes(_)
    ));
    assert!(matches!(
        rejected(
            &g,
            forge(gp, &g.bob, |r| {
                r.attributes =
            r#"<attributes><attribute name="peercreatorid" type="string">x</attribute></attributes>"#.into()
            })
        ),
        ValidationError::BadAttributes(_)
    ));
    assert!(matches!(
        rejected(&g, forge(gp, &g.bob, |r| r.id.0[15] ^= 1)),
        ValidationError::IdNotBound { .. }
    ));
    let mut db = g.replica();
    let old = forge(gp, &g.bob, |_| {});
    let report = db.apply(vec![old], t0().saturating_add(DAY * 2)).unwrap();
    assert!(matches!(report.rejected[0].1, ValidationError::Expired(_)));
}

#[test]
fn signature_and_signer_rules() {
    let g = Group::new();
    let gp = g.group();
    // Tampered after signing.
    let mut r = forge(gp, &g.bob, |_| {});
    r.payload = b"changed".to_vec();
    assert_eq!(rejected(&g, r), ValidationError::BadSignature);
    // Signed for another group.
    let r = forge(g.mallory.peer(), &g.bob, |_| {});
    assert_eq!(rejected(&g, r), ValidationError::BadSignature);
    // Carol's certificate serial on a record claiming Bob as creator.
    let r = forge(gp, &g.bob, |r| {
        r.security.modifier_serial = g.carol.chain.leaf().serial().to_vec()
    });
    let r = peergroup_record_db::Record {
        security: peergroup_record_db::SecurityData {
            creator_serial: r.security.modifier_serial.clone(),
            ..r.security.clone()
        },
        ..r
    };
    assert!(matches!(
        rejected(&g, r),
        ValidationError::SignerMismatch(_)
    ));
    // Signed before the signer's membership began.
    let r = forge(gp, &g.bob, |r| {
        r.created = t0().saturating_sub(HOUR);
        r.last_modified = r.created;
    });
    assert!(matches!(
        rejected(&g, r),
        ValidationError::Chain(ChainError::NotYetValid { .. })
    ));
    // Living past the signer's membership (Bob's lasts a year).
    let r = forge(gp, &g.bob, |r| r.expires = t0().saturating_add(DAY * 400));
    assert!(matches!(
        rejected(&g, r),
        ValidationError::OutsideMembership { .. }
    ));
}

#[test]
fn authorization_rules() {
    let g = Group::new();
    let gp = g.group();
    let now = t0().saturating_add(HOUR);
    let mut db = g.replica();
    let bobs = db
        .create(
            g.bob.signer(),
            new_record(b"bob's", t0().saturating_add(DAY)),
            now,
        )
        .unwrap()
        .record;
    // Carol updates Bob's record: refused by every replica.
    let mut evil = bobs.clone();
    evil.version = 2;
    evil.modified_by = Some(g.carol.peer().clone());
    evil.last_modified = now.saturating_add(HOUR);
    evil.security.modifier_serial = g.carol.chain.leaf().serial().to_vec();
    evil.payload = b"carol was here".to_vec();
    let evil = resign(gp, &g.carol, evil);
    let report = db.apply(vec![evil.clone()], now).unwrap();
    assert!(
        matches!(report.rejected[0].1, ValidationError::NotAuthorized(_)),
        "{:?}",
        report.rejected
    );
    assert_eq!(db.get(bobs.id).unwrap().unwrap().payload, b"bob's");
    // And the local API refuses it too.
    assert!(matches!(
        db.delete(g.carol.signer(), bobs.id, now),
        Err(peergroup_record_db::Error::NotAuthorized(_))
    ));
    // Alice, an admin, may.
    let change = db.delete(g.alice.signer(), bobs.id, now).unwrap();
    assert!(change.record.is_deleted());
    // Properties: only the creator.
    let props = GroupProperties::new("Renamed", g.alice.peer().clone());
    assert!(matches!(
        db.set_properties(g.bob.signer(), &props, now),
        Err(peergroup_record_db::Error::NotAuthorized(_))
    ));
    db.set_properties(g.alice.signer(), &props, now).unwrap();
    assert_eq!(db.properties().friendly_name, "Renamed");
    // Revocation: only admins.
    assert!(matches!(
        db.revoke(
            g.bob.signer(),
            RevocationTarget::Peer(g.carol.peer().clone()),
            "",
            now
        ),
        Err(peergroup_record_db::Error::NotAuthorized(_))
    ));
    // Membership: a member publishes only its own.
    assert!(matches!(
        db.publish_membership(g.bob.signer(), &g.carol.chain, now),
        Err(peergroup_record_db::Error::Invalid(
            ValidationError::BadReservedPayload { .. }
        ))
    ));
    db.publish_membership(g.bob.signer(), &g.bob.chain, now)
        .unwrap();
    db.publish_membership(g.alice.signer(), &g.carol.chain, now)
        .unwrap();
    // Reserved type not ours to use.
    let r = forge(gp, &g.bob, |r| {
        r.record_type = "00000500-0000-0000-0000-000000000000".parse().unwrap()
    });
    assert!(matches!(
        rejected(&g, r),
        ValidationError::BadReservedPayload { .. }
    ));
    // A member's presence is its own.
    let mut db2 = g.replica();
    let p = db2
        .create(g.bob.signer(), NewRecordExt::presence(now), now)
        .unwrap()
        .record;
    let mut fake = p.clone();
    fake.version = 2;
    fake.modified_by = Some(g.alice.peer().clone());
    fake.last_modified = now.saturating_add(Duration::from_secs(60));
    fake.security.modifier_serial = g.alice.chain.leaf().serial().to_vec();
    let fake = resign(gp, &g.alice, fake);
    let report = db2.apply(vec![fake], now).unwrap();
    assert!(
        matches!(
            report.rejected[0].1,
            ValidationError::BadReservedPayload { .. }
        ),
        "{:?}",
        report.rejected
    );
}

struct NewRecordExt;
impl NewRecordExt {
    fn presence(now: peergroup_identity::Timestamp) -> peergroup_record_db::NewRecord {
        peergroup_record_db::NewRecord {
            record_type: RecordType::PRESENCE,
            ..new_record(b"here", now.saturating_add(HOUR))
        }
    }
}

#[test]
fn revoked_signer() {
    let g = Group::new();
    let now = t0().saturating_add(HOUR);
    let mut db = g.replica();
    let before = db
        .create(
            g.bob.signer(),
            new_record(b"before", t0().saturating_add(DAY)),
            now,
        )
        .unwrap()
        .record;
    db.revoke(
        g.alice.signer(),
        RevocationTarget::Peer(g.bob.peer().clone()),
        "left",
        now.saturating_add(HOUR),
    )
    .unwrap();
    // Records from before the revocation stay; new ones are refused.
    assert!(db.get(before.id).unwrap().is_some());
    let after = forge(g.group(), &g.bob, |r| {
        r.created = now.saturating_add(HOUR * 2);
        r.last_modified = r.created;
    });
    let report = db.apply(vec![after], now.saturating_add(HOUR * 2)).unwrap();
    assert!(
        matches!(
            report.rejected[0].1,
            ValidationError::Chain(ChainError::Revoked { .. })
        ),
        "{:?}",
        report.rejected
    );
    assert!(
        db.create(
            g.bob.signer(),
            new_record(b"x", t0().saturating_add(DAY)),
            now.saturating_add(HOUR * 2)
        )
        .is_err()
    );
}

#[test]
fn a_record_arriving_before_the_revocation_is_purged_when_it_comes() {
    let g = Group::new();
    let now = t0().saturating_add(HOUR);
    let mut admin_db = g.replica();
    let revocation = admin_db
        .revoke(
            g.alice.signer(),
            RevocationTarget::Peer(g.bob.peer().clone()),
            "",
            now,
        )
        .unwrap()
        .record;
    let late = forge(g.group(), &g.bob, |r| {
        r.created = now.saturating_add(HOUR);
        r.last_modified = r.created;
    });
    let mut db = g.replica();
    assert_eq!(
        db.apply(vec![late.clone()], now.saturating_add(HOUR))
            .unwrap()
            .accepted()
            .len(),
        1
    );
    let report = db
        .apply(vec![revocation], now.saturating_add(HOUR))
        .unwrap();
    assert_eq!(report.purged.len(), 1);
    assert!(db.get(late.id).unwrap().is_none());
    assert_eq!(db.digest(), admin_db.digest(), "replicas diverged");
}

#[test]
fn deferred_until_membership_arrives() {
    let g = Group::new();
    let now = t0().saturating_add(HOUR);
    let mut author = g.replica();
    let membership = author
        .publish_membership(g.bob.signer(), &g.bob.chain, now)
        .unwrap()
        .unwrap()
        .record;
    let data = author
        .create(
            g.bob.signer(),
            new_record(b"early", t0().saturating_add(DAY)),
            now,
        )
        .unwrap()
        .record;
    let mut db = g.bare_replica();
    let report = db.apply(vec![data.clone()], now).unwrap();
    assert_eq!(report.deferred, 1);
    assert!(
        db.get(data.id).unwrap().is_none(),
        "stored before validation"
    );
    assert_eq!(db.deferred_len(), 1);
    let report = db.apply(vec![membership.clone()], now).unwrap();
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    assert_eq!(db.get(data.id).unwrap(), Some(data.clone()));
    assert_eq!(db.deferred_len(), 0);
    assert_eq!(
        report.change_of(&data.id),
        Some(peergroup_record_db::ChangeKind::Added)
    );
    // Both in one batch, in the "wrong" order.
    let mut db = g.bare_replica();
    let report = db.apply(vec![data.clone(), membership], now).unwrap();
    assert!(
        report.rejected.is_empty() && report.deferred == 0,
        "{report:?}"
    );
    assert!(db.get(data.id).unwrap().is_some());
}

#[test]
fn reserved_payloads_are_checked() {
    let g = Group::new();
    let gp = g.group();
    let bad_props = forge(gp, &g.alice, |r| {
        r.record_type = RecordType::GROUP_PROPERTIES;
        r.id = GroupProperties::record_id(g.alice.peer());
        r.payload = vec![1, 2, 3];
    });
    assert!(matches!(
        rejected(&g, bad_props),
        ValidationError::BadReservedPayload { .. }
    ));
    let foreign_membership = forge(gp, &g.alice, |r| {
        r.record_type = RecordType::MEMBERSHIP;
        r.payload = MembershipPayload::new(&g.mallory.chain).to_payload();
        r.id = MembershipPayload::record_id(g.alice.peer(), g.mallory.chain.leaf().serial());
    });
    assert!(matches!(
        rejected(&g, foreign_membership),
        ValidationError::BadReservedPayload { .. }
    ));
}

#[test]
fn decoding_rejects_bad_bytes() {
    let g = Group::new();
    let r = forge(g.group(), &g.bob, |_| {});
    let bytes = codec::encode(&r);
    assert_eq!(codec::decode(&bytes).unwrap(), r);
    assert!(codec::decode(&bytes[..bytes.len() - 1]).is_err());
    let mut extra = bytes.clone();
    extra.push(0);
    assert!(matches!(
        codec::decode(&extra),
        Err(peergroup_record_db::DecodeError::TrailingBytes(1))
    ));
    let mut v2 = bytes.clone();
    v2[0] = 2;
    assert!(matches!(
        codec::decode(&v2),
        Err(peergroup_record_db::DecodeError::UnknownVersion(2))
    ));
    assert!(codec::decode(&[]).is_err());
}

#[test]
fn create_many_stores_all_in_order_and_other_replicas_accept_them() {
    let g = Group::new();
    let now = t0().saturating_add(HOUR);
    let mut db = g.replica();
    let news: Vec<_> = (0..20u8)
        .map(|i| new_record(&[i; 3], t0().saturating_add(DAY)))
        .collect();
    let changes = db.create_many(g.bob.signer(), news, now).unwrap();
    assert_eq!(changes.len(), 20);
    for (i, c) in changes.iter().enumerate() {
        assert_eq!(c.record.payload, vec![i as u8; 3], "out of order");
        assert_eq!(db.get(c.record.id).unwrap().as_ref(), Some(&c.record));
    }
    // The local path does not check its own signatures: another replica does, and must
    // accept every one of them.
    let mut other = g.replica();
    let records: Vec<_> = changes.into_iter().map(|c| c.record).collect();
    let report = other.apply(records, now).unwrap();
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    assert_eq!(report.accepted().len(), 20);
}

#[test]
fn create_many_is_all_or_none() {
    let g = Group::new();
    let now = t0().saturating_add(HOUR);
    let mut db = g.replica();
    let mut news: Vec<_> = (0..5u8)
        .map(|i| new_record(&[i], t0().saturating_add(DAY)))
        .collect();
    // A member may not revoke: the whole call is refused and nothing is stored.
    let mut revocation = new_record(b"", t0().saturating_add(DAY));
    revocation.record_type = RecordType::REVOCATION;
    revocation.payload = peergroup_record_db::reserved::RevocationPayload {
        target: RevocationTarget::Peer(g.carol.peer().clone()),
        reason: String::new(),
    }
    .to_payload();
    news.insert(2, revocation);
    let err = db
        .create_many(g.bob.signer(), news.clone(), now)
        .unwrap_err();
    assert!(
        matches!(err, peergroup_record_db::Error::NotAuthorized(_)),
        "{err}"
    );
    assert_eq!(db.len(), 0, "a refused batch stored records");
    // An expiry in the past is refused before anything is signed.
    news.remove(2);
    news[4].expires = t0();
    let err = db.create_many(g.bob.signer(), news, now).unwrap_err();
    assert!(err.to_string().contains("not in the future"), "{err}");
    assert_eq!(db.len(), 0);
}

#[test]
fn signed_records_are_published_only_by_their_signer_in_their_group() {
    let g = Group::new();
    let now = t0().saturating_add(HOUR);
    let mut db = g.replica();
    let news = vec![new_record(b"x", t0().saturating_add(DAY))];
    let bobs = SignedRecords::sign(g.group(), g.bob.signer(), news.clone(), now).unwrap();
    assert_eq!(bobs.len(), 1);
    // Carol cannot publish what Bob signed (it would go out unchecked under her name).
    let err = db
        .publish_signed(g.carol.signer(), bobs.clone(), now)
        .unwrap_err();
    assert!(err.to_string().contains("another key"), "{err}");
    // Records signed for another group are refused.
    let other: peergroup_identity::PeerName = "0000000000000000000000000000000000000000.other"
        .parse()
        .unwrap();
    let elsewhere = SignedRecords::sign(&other, g.bob.signer(), news, now).unwrap();
    let err = db
        .publish_signed(g.bob.signer(), elsewhere, now)
        .unwrap_err();
    assert!(err.to_string().contains("signed for group"), "{err}");
    assert_eq!(db.len(), 0);
    let changes = db
        .publish_signed(g.bob.signer(), bobs.clone(), now)
        .unwrap();
    assert_eq!(changes[0].record, bobs.records()[0]);
}

#[test]
fn signatures_checked_on_arrival_count_only_when_good_and_still_validate() {
    let g = Group::new();
    let gp = g.group().clone();
    let now = t0().saturating_add(HOUR);
    let mut db = g.replica();
    let keys = db.signer_keys();
    let good = forge(&gp, &g.bob, |_| {});
    let mut tampered = forge(&gp, &g.bob, |r| {
        r.id = peergroup_record_db::RecordId::derive(&r.creator, [1; 8])
    });
    tampered.payload = b"tampered".to_vec();
    let checked = keys.check(vec![good.clone(), tampered.clone()]);
    let bob = g.bob.key.public();
    assert!(checked[0].checked_with(&bob));
    assert!(!checked[1].checked_with(&bob), "a bad signature passed");
    let report = db.apply_received(checked, now).unwrap();
    assert_eq!(report.accepted(), vec![good.clone()]);
    assert!(matches!(
        report.rejected.as_slice(),
        [(id, ValidationError::BadSignature)] if *id == tampered.id
    ));
    // A good signature does not make a record valid: a revoked signer is still refused.
    db.revoke(
        g.alice.signer(),
        RevocationTarget::Peer(g.bob.peer().clone()),
        "",
        now,
    )
    .unwrap();
    let later = forge(&gp, &g.bob, |r| {
        r.id = peergroup_record_db::RecordId::derive(&r.creator, [2; 8]);
        r.created = now.saturating_add(HOUR);
        r.last_modified = now.saturating_add(HOUR);
    });
    let checked = keys.check(vec![later.clone()]);
    assert!(checked[0].checked_with(&bob));
    let report = db
        .apply_received(checked, now.saturating_add(HOUR))
        .unwrap();
    assert!(report.accepted().is_empty());
    assert_eq!(report.rejected.len(), 1, "{report:?}");
    // A replica that does not know the signer checks nothing on arrival (and defers).
    let bare = g.bare_replica();
    assert!(!bare.signer_keys().check(vec![good])[0].checked_with(&bob));
}

#[test]
fn group_properties_payload_versions() {
    let g = Group::new();
    let mut props = GroupProperties::new("Versions", g.alice.peer().clone());
    assert_eq!(props.max_presence, GroupProperties::DEFAULT_MAX_PRESENCE);
    // A bound on presence needs version 2 and survives the round trip.
    props.max_presence = 128;
    let v2 = props.to_payload();
    assert_eq!(v2[0], 2);
    assert_eq!(GroupProperties::from_payload(&v2).unwrap(), props);
    // Every node's presence is what version 1 meant: written as version 1, read back as such.
    props.max_presence = GroupProperties::ALL_PRESENCE;
    let v1 = props.to_payload();
    assert_eq!(v1[0], 1);
    assert_eq!(
        v1.len() + 2,
        v2.len(),
        "version 2 adds a varint (128: two bytes)"
    );
    let read = GroupProperties::from_payload(&v1).unwrap();
    assert_eq!(read.max_presence, GroupProperties::ALL_PRESENCE);
    // Version 1 bytes of a bounded group's fields (as an older release wrote them) read as
    // every node's presence.
    let mut old = v2.clone();
    old[0] = 1;
    old.truncate(v1.len());
    assert_eq!(
        GroupProperties::from_payload(&old).unwrap().max_presence,
        GroupProperties::ALL_PRESENCE
    );
    // Trailing bytes, a truncated bound and unknown versions are refused, by name.
    let mut trailing = v2.clone();
    trailing.push(0);
    let mut truncated = v2.clone();
    truncated.truncate(v1.len());
    let mut v3 = v2.clone();
    v3[0] = 3;
    for (bytes, says) in [
        (&trailing, "trailing"),
        (&truncated, "end"),
        (&v3, "version 3"),
    ] {
        let e = GroupProperties::from_payload(bytes)
            .unwrap_err()
            .to_string();
        assert!(e.contains("group properties") && e.contains(says), "{e}");
    }
}
