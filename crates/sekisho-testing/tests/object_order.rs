//! `POST /api/authz/list/` pages object ids in one order on every backend: byte by byte, as
//! SQLite compares text. A PostgreSQL database whose default collation is a natural-language
//! one (ICU `en-US`: "a" before "B") must still list "B" before "a", or a cursor taken on one
//! order would skip or repeat ids.

use sekisho_core::account::NewUser;
use sekisho_core::authz::{ObjectGrant, ObjectRef, Principal};
use sekisho_core::clock::Timestamp;
use sekisho_core::store::{AuthzStore, UserStore};
use sekisho_store::postgres::PgStore;
use sekisho_testing::services;
use std::time::Duration;

#[tokio::test]
async fn object_ids_list_in_byte_order_whatever_the_database_collation() {
    let db = services::fresh_pg_database_with(
        "TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'",
    )
    .await;
    let s = PgStore::connect(&db.url, 4, Duration::from_secs(5))
        .await
        .unwrap();
    s.migrate().await.unwrap();
    let u = NewUser {
        username: "orderly".into(),
        email: String::new(),
        is_staff: false,
        is_superuser: false,
    };
    let id = s.create_user(&u, "!", Timestamp(0)).await.unwrap().id;
    s.create_permission("shop.change_order", "").await.unwrap();
    let g = s.create_group("team").await.unwrap();
    s.add_member(g.id, id).await.unwrap();
    let grant = |p: Principal, oid: &str| ObjectGrant {
        principal: p,
        permission: "shop.change_order".into(),
        object: ObjectRef {
            object_type: "shop.order".into(),
            object_id: oid.into(),
        },
    };
    for oid in ["a", "B", "b-2", "b2"] {
        s.grant_object(&grant(Principal::User(id), oid))
            .await
            .unwrap();
    }
    s.grant_object(&grant(Principal::Group(g.id), "A"))
        .await
        .unwrap();
    let page = s
        .object_ids(id, "shop.change_order", "shop.order", None, 3)
        .await
        .unwrap();
    assert_eq!(page.ids, ["A", "B", "a"], "byte order, not en-US order");
    assert_eq!(page.next.as_deref(), Some("a"));
    let rest = s
        .object_ids(id, "shop.change_order", "shop.order", Some("a"), 3)
        .await
        .unwrap();
    assert_eq!(rest.ids, ["b-2", "b2"]);
    assert_eq!(rest.next, None);
    drop(s);
    db.drop().await;
}
