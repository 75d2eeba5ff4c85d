//! Group properties: read by all, set by the creator only, some fields fixed for good.

use peergroup::{ErrorKind, EventFilter, EventKind, GroupEvent, Role};

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_creator_sets_properties_and_everyone_sees_them() {
    bounded(async {
        let net = Net::form(&["Alice", "Bob", "Carol"], &[Role::Admin, Role::Member]).await;
        let (a, b, c) = (&net.groups[0], &net.groups[1], &net.groups[2]);
        let props = a.properties().await.unwrap();
        assert_eq!(props.friendly_name, "Test group");
        assert_eq!(props.creator, net.peers[0].id);
        for g in [b, c] {
            assert_eq!(g.properties().await.unwrap(), props);
        }
        let mut at_b = b.events(EventFilter::kinds([EventKind::PropertyChanged]));
        let mut at_c = c.events(EventFilter::kinds([EventKind::PropertyChanged]));

        let mut changed = props.clone();
        changed.comment = "new plans".into();
        changed.friendly_name = "Renamed group".into();
        let record = a.set_properties(changed.clone()).await.unwrap();
        assert_eq!(record.record_type, peergroup::RecordType::GROUP_PROPERTIES);
        for s in [&mut at_b, &mut at_c] {
            let seen = expect(s, "the new properties", |e| match e {
                GroupEvent::PropertyChanged(p) => Some((**p).clone()),
                _ => None,
            })
            .await;
            assert_eq!(seen, changed);
        }
        assert_eq!(c.properties().await.unwrap(), changed);

        // Neither another admin nor a member may change them.
        let mut attempt = changed.clone();
        attempt.comment = "taken over".into();
        for g in [b, c] {
            assert_eq!(
                kind_of(g.set_properties(attempt.clone()).await),
                ErrorKind::NotAuthorized
            );
        }
        // The creator and the password settings are fixed, even for the creator.
        let mut other_creator = changed.clone();
        other_creator.creator = net.peers[1].id.clone();
        assert_eq!(
            kind_of(a.set_properties(other_creator).await),
            ErrorKind::InvalidArgument
        );
        let mut with_password = changed.clone();
        with_password.password_auth = true;
        with_password.password_role = Some(Role::Member);
        assert_eq!(
            kind_of(a.set_properties(with_password).await),
            ErrorKind::InvalidArgument
        );
        // Nonsense values are refused.
        let mut tiny = changed.clone();
        tiny.presence_lifetime_secs = 1;
        assert!(a.set_properties(tiny).await.is_err());
        expect_none(&mut at_c, "property change", |e| {
            matches!(e, GroupEvent::PropertyChanged(_))
        })
        .await;
        for g in &net.groups {
            assert_eq!(g.properties().await.unwrap(), changed);
        }
    })
    .await;
}
