use super::*;

#[test]
fn ids_are_deterministic_and_sorted_url_based() {
    let a = member_id(
        &["http://b:2380".into(), "http://a:2380".into()],
        "tok",
        None,
    );
    let b = member_id(
        &["http://a:2380".into(), "http://b:2380".into()],
        "tok",
        None,
    );
    assert_eq!(a, b);
    assert_ne!(a, member_id(&["http://a:2380".into()], "tok", None));
    assert_eq!(cluster_id(&[3, 1, 2]), cluster_id(&[1, 2, 3]));
}

#[test]
fn initial_cluster_parse_and_errors() {
    let c =
        InitialCluster::parse("m1=http://127.0.0.1:1,m2=http://127.0.0.1:2,m1=http://127.0.0.1:3")
            .unwrap();
    assert_eq!(c.members.len(), 2);
    assert_eq!(
        c.members[0].1,
        vec!["http://127.0.0.1:1", "http://127.0.0.1:3"]
    );
    assert!(InitialCluster::parse("m1=http://a:1,m2=http://a:1").is_err());
    assert!(InitialCluster::parse("nourl").is_err());
}
