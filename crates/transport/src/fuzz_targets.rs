//! Bodies of the fuzz targets in `fuzz/`, public so the seed corpus also runs as a test.

use bytes::BytesMut;

use crate::frame::{FrameCodec, decode_body, encode_body};

/// Frame decoding: arbitrary bytes as a stream of length-prefixed frames (whole, and split at
/// every 7th byte), and as one frame body. Nothing may panic; whatever decodes must encode
/// and decode back to the same frame; both ways of feeding must agree.
pub fn frame_decode(data: &[u8]) {
    const MAX: usize = 64 * 1024;
    let whole = decode_stream(data, data.len().max(1), MAX);
    let pieces = decode_stream(data, 7, MAX);
    assert_eq!(whole, pieces, "decoding depends on how the bytes arrive");
    for frame in whole.iter().flatten() {
        let mut wire = BytesMut::new();
        let mut codec = FrameCodec::new(MAX);
        assert!(
            codec.encode_frame(frame, &mut wire).is_ok(),
            "re-encoding failed"
        );
        assert_eq!(
            codec.decode_frame(&mut wire).ok().flatten().as_ref(),
            Some(frame)
        );
        assert!(wire.is_empty());
    }
    if let Ok(frame) = decode_body(data) {
        let again = encode_body(&frame).ok().map(|b| decode_body(&b));
        assert_eq!(again, Some(Ok(frame)), "body round trip changed the frame");
    }
}

/// Frames decoded from `data` fed `chunk` bytes at a time, up to the first error (kept as
/// `None`, so two feedings can be compared).
fn decode_stream(data: &[u8], chunk: usize, max: usize) -> Vec<Option<crate::Frame>> {
    let mut codec = FrameCodec::new(max);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for piece in data.chunks(chunk) {
        buf.extend_from_slice(piece);
        loop {
            match codec.decode_frame(&mut buf) {
                Ok(Some(frame)) => out.push(Some(frame)),
                Ok(None) => break,
                Err(_) => {
                    out.push(None);
                    return out;
                }
            }
        }
    }
    out
}

/// A fixed password group for [`password_join`]: a root and an admin (the member taking
/// joins), the joiner's key, chains the member might send back, and two members' OPAQUE
/// records: of the right password, and of another one.
struct JoinFixture {
    trust: crate::GroupTrust,
    member_binding: crate::join::pake::Binding,
    joiner_key: peergroup_identity::PublicKey,
    /// DER lists: the joiner's chain, a chain for another key, another group's chain.
    chains: [Vec<Vec<u8>>; 3],
    right: crate::PasswordRecord,
    wrong: crate::PasswordRecord,
}

/// The group password of the fixture, and a wrong one.
const RIGHT_PASSWORD: &[u8] = b"correct horse";
const WRONG_PASSWORD: &[u8] = b"correct horsf";

fn join_fixture() -> Option<&'static JoinFixture> {
    use std::sync::{Arc, OnceLock};
    use std::time::Duration;

    use peergroup_credential_roles::{CertChain, GroupRoot, MemberRequest, Role, Roles};
    use peergroup_identity::{Classifier, KdfParams, KeyPair, PeerName, Timestamp};

    static F: OnceLock<Option<JoinFixture>> = OnceLock::new();
    F.get_or_init(|| {
        let t0 = Timestamp::from_secs(1_800_000_000);
        let key = KeyPair::from_test_seed;
        let name =
            |n: u64, c: &str| Some(PeerName::new(&key(n).public(), Classifier::new(c).ok()?));
        let (admin, joiner, other) = (name(1, "admin")?, name(6, "joiner")?, name(2, "other")?);
        let request = |n: u64, peer: &PeerName| MemberRequest {
            subject_key: key(n).public(),
            subject_peer: peer.clone(),
            subject_friendly_name: peer.classifier().to_string(),
            roles: Roles::one(Role::Member),
            classifiers: vec![],
            not_before: t0,
            not_after: t0.saturating_add(Duration::from_secs(365 * 86_400)),
        };
        let admin_request = MemberRequest {
            roles: Roles::one(Role::Admin),
            ..request(1, &admin)
        };
        let root = GroupRoot::with_key(key(100), "Join", Classifier::new("join").ok()?, &admin, t0)
            .ok()?;
        let admin_chain = root.issue(&admin_request).ok()?;
        let joiner_chain = admin_chain.issue(&key(1), &request(6, &joiner)).ok()?;
        let other_chain = admin_chain.issue(&key(1), &request(2, &other)).ok()?;
        let stranger =
            GroupRoot::with_key(key(200), "Else", Classifier::new("else").ok()?, &admin, t0)
                .ok()?;
        let stranger_chain = stranger.issue(&request(6, &joiner)).ok()?;
        let ders = |c: &CertChain| c.certificates().iter().map(|c| c.der().to_vec()).collect();
        // Certificates are judged at a fixed instant inside their validity.
        let at = t0.saturating_add(Duration::from_secs(3600));
        let trust = crate::GroupTrust::with_clock(root.group().clone(), Arc::new(move || at));
        let kdf = KdfParams::INSECURE_FAST;
        Some(JoinFixture {
            trust,
            member_binding: crate::join::pake::Binding {
                group: root.group().clone(),
                joiner,
                member: admin,
                exporter: [7; 32],
            },
            joiner_key: key(6).public(),
            chains: [
                ders(&joiner_chain),
                ders(&other_chain),
                ders(&stranger_chain),
            ],
            right: crate::PasswordRecord::register(RIGHT_PASSWORD, root.group(), kdf).ok()?,
            wrong: crate::PasswordRecord::register(WRONG_PASSWORD, root.group(), kdf).ok()?,
        })
    })
    .as_ref()
}

/// A reader of fuzz input: bytes, choices and slices, zeros once it runs out.
struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }

    fn take(&mut self, max: usize) -> &'a [u8] {
        let n = usize::from(self.byte()).min(max).min(self.0.len());
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        head
    }

    fn text(&mut self) -> String {
        String::from_utf8_lossy(self.take(255)).repeat(usize::from(self.byte() % 4) + 1)
    }
}

/// One message as it travels: `u32` big-endian length, then the body.
fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = u32::try_from(body.len())
        .unwrap_or(u32::MAX)
        .to_be_bytes()
        .to_vec();
    out.extend_from_slice(body);
    out
}

/// What reading one framed message from `wire` gives, as `join::wire::read_message` reads it:
/// `None` for a stream that ends first, `Some(Err)` for a malformed message.
fn read_frame(
    wire: &[u8],
) -> Option<Result<crate::join::pake::JoinMessage, crate::join::pake::PakeError>> {
    use crate::join::pake::{MAX_MESSAGE, PakeError, decode};
    let (prefix, body) = wire.split_first_chunk::<4>()?;
    let len = u32::from_be_bytes(*prefix) as usize;
    if len > MAX_MESSAGE {
        return Some(Err(PakeError::Malformed(format!("a {len}-byte message"))));
    }
    Some(decode(body.get(..len)?))
}

/// The message the other side sends, from the input: the honest one, the honest one with a
/// flipped byte, a message built from input fields, or raw bytes (framed or not).
fn choose_message(
    input: &mut Input<'_>,
    honest: Option<&crate::join::pake::JoinMessage>,
) -> Vec<u8> {
    use crate::join::pake::{JoinMessage, WireKdf, WireRefusal, encode};
    let encoded = |m: &JoinMessage| encode(m).map(|b| frame(&b)).unwrap_or_default();
    match (input.byte() % 8, honest) {
        (0..=2, Some(m)) => encoded(m),
        (3, Some(m)) => {
            let mut wire = encoded(m);
            let at = usize::from(input.byte()) * 7 + usize::from(input.byte());
            let body_len = wire.len().saturating_sub(4).max(1);
            if let Some(b) = wire.get_mut(4 + at % body_len) {
                *b ^= input.byte() | 1;
            }
            wire
        }
        (4, _) => encoded(&JoinMessage::Start {
            kdf: WireKdf {
                m_cost_kib: u32::from(input.byte()) << (input.byte() % 20),
                t_cost: u32::from(input.byte() % 12),
                lanes: u32::from(input.byte() % 10),
            },
            ke2: input.take(255).to_vec(),
        }),
        (5, _) => encoded(&match input.byte() % 3 {
            0 => JoinMessage::Abandoned,
            1 => JoinMessage::Request {
                ke1: input.take(255).to_vec(),
            },
            _ => JoinMessage::Proof {
                ke3: input.take(255).to_vec(),
            },
        }),
        (6, _) => encoded(&match input.byte() % 6 {
            0 => JoinMessage::Refused(WireRefusal::WrongPassword),
            1 => JoinMessage::Refused(WireRefusal::RateLimited {
                retry_after_secs: u32::from(input.byte()) << 20,
            }),
            2 => JoinMessage::Refused(WireRefusal::IssueFailed(input.text())),
            3 => JoinMessage::Refused(WireRefusal::Protocol(input.text())),
            _ => JoinMessage::Issued {
                chain: (0..input.byte() % 4)
                    .map(|_| input.take(255).to_vec())
                    .collect(),
            },
        }),
        (7, _) if input.byte() & 1 == 0 => input.take(255).to_vec(),
        _ => frame(input.take(255)),
    }
}

/// Password joins past the framing, both sides, over the sans-IO proof (`join::pake`) as
/// `join::server` and `join::client` drive it, with a fixed group and records.
///
/// The member's side: reads what the input makes of the joiner's `Request` (honest, flipped,
/// any message, raw bytes), answers with `Start`, reads what the input makes of the joiner's
/// answer (an honest proof with the right or a wrong password, in this TLS session or
/// another, `Abandoned`, a proof with a flipped byte, any other message, raw bytes), and
/// answers with credentials or a refusal. The joiner's side: reads what the input makes of
/// the member's `Start` (from a member holding a record of the right password or another;
/// honest, flipped, any cost parameters, any message), answers, then reads the member's
/// credentials (honest with the joiner's chain, another key's or another group's, flipped,
/// forged, a refusal) and validates them as `password_join` does.
///
/// Checks: nothing panics; the member issues only to the honest proof made with the right
/// password in the same session; the joiner sends a proof only to a member holding a record
/// of its password, and accepts only a chain certifying its own key for the group; every
/// message sent encodes within the message limit and decodes back to itself.
pub fn password_join(data: &[u8]) {
    let _ = password_join_outcome(data);
}

/// [`password_join`], saying how far each side got: the member's verdict and the joiner's
/// (so the seed tests can check that the seeds reach every outcome).
pub fn password_join_outcome(data: &[u8]) -> (&'static str, &'static str) {
    use crate::join::pake::{
        JoinMessage, JoinerPake, MAX_MESSAGE, MemberPake, PakeError, WireRefusal, decode, encode,
    };
    use peergroup_credential_roles::CertChain;

    let Some(f) = join_fixture() else {
        return ("", "");
    };
    let mut input = Input(data);
    let sends = |m: &JoinMessage| {
        let body = encode(m);
        assert!(
            body.as_ref().is_ok_and(|b| b.len() <= MAX_MESSAGE),
            "a message that cannot travel: {m:?}"
        );
        let again = body.as_ref().ok().map(|b| decode(b));
        assert!(
            matches!(&again, Some(Ok(d)) if d == m),
            "a message that does not decode to itself: {m:?}"
        );
    };
    let refusal = |e: String| JoinMessage::Refused(WireRefusal::Protocol(e).truncated());

    // The member's side.
    let right_password = input.byte() & 1 == 0;
    let joiner_password = if right_password {
        RIGHT_PASSWORD
    } else {
        WRONG_PASSWORD
    };
    let mut joiner_binding = f.member_binding.clone();
    if input.byte() & 3 == 0 {
        joiner_binding.exporter = [8; 32];
    }
    let Ok((joiner, request)) = JoinerPake::start(joiner_password) else {
        return ("", "");
    };
    sends(&request);
    let wire = choose_message(&mut input, Some(&request));
    let honest_request = read_frame(&wire).and_then(Result::ok) == Some(request.clone());
    let mut member_says = "malformed";
    let started = match read_frame(&wire) {
        None => {
            member_says = "no request";
            None
        }
        Some(Ok(JoinMessage::Request { ke1 })) => {
            match MemberPake::start(&f.right, &f.member_binding, &ke1) {
                Ok(started) => Some(started),
                Err(e) => {
                    member_says = "bad request";
                    sends(&refusal(e.to_string()));
                    None
                }
            }
        }
        Some(Err(e)) => {
            sends(&refusal(e.to_string()));
            None
        }
        Some(Ok(_)) => {
            sends(&refusal("expected a login request".into()));
            None
        }
    };
    if let Some((member, start)) = started {
        sends(&start);
        // What an honest joiner answers: its proof, or `Abandoned` when KE2 does not verify.
        let honest = match (&start, honest_request) {
            (JoinMessage::Start { kdf, ke2 }, true) => {
                let finished = joiner.finish(joiner_password, &joiner_binding, *kdf, ke2);
                assert!(
                    !matches!(finished, Err(PakeError::Malformed(_))),
                    "the joiner could not read an honest start: {finished:?}"
                );
                Some(finished.unwrap_or(JoinMessage::Abandoned))
            }
            _ => None,
        };
        if let Some(h) = &honest {
            sends(h);
            assert!(
                matches!(h, JoinMessage::Proof { .. })
                    == (right_password && joiner_binding.exporter == f.member_binding.exporter),
                "the joiner's verdict on an honest member is wrong: {h:?}"
            );
        }
        let wire = choose_message(&mut input, honest.as_ref());
        let reply = match read_frame(&wire) {
            None => {
                member_says = "no proof";
                None
            }
            Some(Err(e)) => Some(refusal(e.to_string())),
            Some(Ok(JoinMessage::Abandoned)) => {
                member_says = "wrong password";
                None
            }
            Some(Ok(JoinMessage::Proof { ke3 })) => {
                let genuine = honest.as_ref() == Some(&JoinMessage::Proof { ke3: ke3.clone() });
                match member.finish(&ke3) {
                    Ok(()) => {
                        assert!(genuine, "the member accepted a proof it should not have");
                        member_says = "issued";
                        Some(JoinMessage::Issued {
                            chain: f.chains[0].clone(),
                        })
                    }
                    Err(PakeError::BadConfirmation) => {
                        assert!(!genuine, "the member refused the right password");
                        member_says = "wrong password";
                        Some(JoinMessage::Refused(WireRefusal::WrongPassword))
                    }
                    Err(e) => {
                        assert!(!genuine, "the member refused the right password: {e}");
                        member_says = "bad proof";
                        Some(refusal(e.to_string()))
                    }
                }
            }
            Some(Ok(_)) => Some(refusal("expected a proof".into())),
        };
        if let Some(reply) = &reply {
            sends(reply);
        }
    }

    // The joiner's side (the right password), against a member holding a record of the right
    // password or of another one.
    let member_record = if input.byte() & 3 == 0 {
        &f.wrong
    } else {
        &f.right
    };
    let Ok((joiner, JoinMessage::Request { ke1 })) = JoinerPake::start(RIGHT_PASSWORD) else {
        return (member_says, "");
    };
    let started = MemberPake::start(member_record, &f.member_binding, &ke1);
    assert!(
        started.is_ok(),
        "the member could not read an honest request"
    );
    let Ok((member, start)) = started else {
        return (member_says, "");
    };
    let wire = choose_message(&mut input, Some(&start));
    let Some(Ok(JoinMessage::Start { kdf, ke2 })) = read_frame(&wire) else {
        return (member_says, "no start");
    };
    // The joiner bounds the cost the member sent before it stretches anything.
    if crate::join::secret::check_kdf(kdf.into()).is_err() {
        return (member_says, "bad cost");
    }
    let honest_start = JoinMessage::Start {
        kdf,
        ke2: ke2.clone(),
    } == start;
    let proof = match joiner.finish(RIGHT_PASSWORD, &f.member_binding, kdf, &ke2) {
        Ok(proof) => proof,
        Err(PakeError::BadConfirmation) => {
            // No proof for a member without a record of our password, nor for a start that
            // is not an honest member's.
            return (member_says, "bad confirmation");
        }
        Err(_) => return (member_says, "bad start"),
    };
    assert!(
        std::ptr::eq(member_record, &f.right) && honest_start,
        "the joiner proved its password to a member that does not hold it, or to a forged start"
    );
    sends(&proof);
    // What an honest member answers: credentials (the joiner's chain, another key's, another
    // group's) when the proof holds, a refusal otherwise.
    let honest = match &proof {
        JoinMessage::Proof { ke3 } => match member.finish(ke3) {
            Ok(()) => JoinMessage::Issued {
                chain: f.chains[usize::from(input.byte() % 3)].clone(),
            },
            Err(_) => JoinMessage::Refused(WireRefusal::WrongPassword),
        },
        _ => return (member_says, "no proof"),
    };
    let wire = choose_message(&mut input, Some(&honest));
    let Some(Ok(JoinMessage::Issued { chain })) = read_frame(&wire) else {
        return (member_says, "no credentials");
    };
    let Ok(chain) = CertChain::from_ders(&chain) else {
        return (member_says, "bad chain");
    };
    let Ok(valid) = f.trust.validate(&chain, &f.joiner_key) else {
        return (member_says, "bad chain");
    };
    if valid.is_group_root() || valid.peer() != &f.member_binding.joiner {
        return (member_says, "bad chain");
    }
    assert!(
        valid.key() == &f.joiner_key
            && chain.certificates()
                == CertChain::from_ders(&f.chains[0])
                    .map(|c| c.certificates().to_vec())
                    .unwrap_or_default(),
        "the joiner accepted credentials that are not the ones issued to it"
    );
    (member_says, "accepted")
}
