//! TCP line protocol (docs/protocol/rooms.md §3): every command, its success and error replies,
//! pushes, case-insensitivity, framing (CRLF, pipelining, EOF-terminated commands).

mod common;

use common::{LineClient, Server, assert_error};

#[tokio::test]
async fn hello_send_and_pushes() {
    let server = Server::start(&[]);
    let mut alice = LineClient::hello(server.tcp, "main", "alice").await;
    let mut bob = LineClient::hello(server.tcp, "main", "bob").await;
    alice.expect_push("JOINED main:bob").await;

    bob.ok("SEND main:bob hello there", "OK SEND main 1").await;
    alice.expect_push("MSG main:bob hello there").await;

    // Internal spacing of the text is kept; leading/trailing spaces of the line are ignored.
    bob.ok("  SEND   main:bob   a  b   c  ", "OK SEND main 1")
        .await;
    alice.expect_push("MSG main:bob a  b   c").await;

    // Unicode text passes through unchanged.
    alice
        .ok("SEND main:alice héllo ✓ 日本", "OK SEND main 1")
        .await;
    bob.expect_push("MSG main:alice héllo ✓ 日本").await;

    // HELLO on a room the client is already in: a no-op answering OK (no JOINED for others).
    alice.ok("HELLO main:alice", "OK HELLO main:alice").await;
    alice.ok("SEND main:alice marker", "OK SEND main 1").await;
    bob.expect_push("MSG main:alice marker").await;

    // A member alone in a room: delivered to nobody.
    let mut carol = LineClient::connect(server.tcp).await;
    carol.ok("NEW solo:carol", "OK NEW solo:carol").await;
    carol.ok("SEND solo:carol anyone?", "OK SEND solo 0").await;
}

#[tokio::test]
async fn hello_errors() {
    let server = Server::start(&[]);
    let mut c = LineClient::connect(server.tcp).await;
    c.err("HELLO nope:alice", "NO_SUCH_ROOM").await;
    c.err("HELLO", "BAD_SYNTAX").await;
    c.err("HELLO main:alice extra", "BAD_SYNTAX").await;
    c.err("HELLO main:al!ce", "BAD_NAME").await;
    c.err("HELLO main:élise", "BAD_NAME").await;
    let long = "a".repeat(65);
    c.err(&format!("HELLO main:{long}"), "BAD_NAME").await;
    // Room names are case-sensitive: MAIN is not main.
    c.err("HELLO MAIN:alice", "NO_SUCH_ROOM").await;

    // Names of exactly 64 characters from the whole charset are fine.
    let name64 = format!("Az09_-.{}", "x".repeat(57));
    assert_eq!(name64.len(), 64);
    c.ok(
        &format!("HELLO main:{name64}"),
        &format!("OK HELLO main:{name64}"),
    )
    .await;
}

#[tokio::test]
async fn bad_names_on_every_command() {
    let server = Server::start(&[]);
    let mut c = LineClient::connect(server.tcp).await;
    let long = "r".repeat(65);
    for line in [
        "HELLO main:b@d".to_owned(),
        "NEW r 1:bob".to_owned(),
        "NEW r/1:bob".to_owned(),
        format!("NEW {long}:bob"),
        "JOIN main:b*d".to_owned(),
        "SEND main:b@d hi".to_owned(),
        "TO main:b@d bob hi".to_owned(),
        "PAUSE main:b@d".to_owned(),
        "RESUME main:b@d".to_owned(),
        "LEAVE main:b@d".to_owned(),
        "QUIT main:b@d".to_owned(),
    ] {
        let reply = c.cmd(&line).await;
        // `NEW r 1:bob` has an extra token: either code is a correct refusal there.
        if line == "NEW r 1:bob" {
            assert!(
                reply.starts_with("ERROR BAD_NAME") || reply.starts_with("ERROR BAD_SYNTAX"),
                "{line:?} → {reply:?}"
            );
        } else {
            assert_error(&reply, "BAD_NAME");
        }
    }
    // Still unbound and usable.
    c.ok("HELLO main:good", "OK HELLO main:good").await;
}

#[tokio::test]
async fn commands_before_registration_and_missing_tokens() {
    let server = Server::start(&[]);
    let _alice = LineClient::hello(server.tcp, "main", "alice").await;
    let mut c = LineClient::connect(server.tcp).await;
    // Acting as a client before registering: the client is not a member of the room.
    c.err("SEND main:ghost hi", "NOT_REGISTERED").await;
    c.err("TO main:ghost alice hi", "NOT_REGISTERED").await;
    c.err("PAUSE main:ghost", "NOT_REGISTERED").await;
    c.err("RESUME main:ghost", "NOT_REGISTERED").await;
    c.err("LEAVE main:ghost", "NOT_REGISTERED").await;
    // Missing tokens.
    for cmd in [
        "NEW", "JOIN", "SEND", "TO", "PAUSE", "RESUME", "LEAVE", "QUIT",
    ] {
        c.err(cmd, "BAD_SYNTAX").await;
    }
    // None of this bound or closed the connection.
    c.ok("HELLO main:ghost", "OK HELLO main:ghost").await;
}

#[tokio::test]
async fn new_and_join() {
    let server = Server::start(&[]);
    let mut alice = LineClient::connect(server.tcp).await;
    alice.ok("NEW r1:alice", "OK NEW r1:alice").await;

    let mut bob = LineClient::hello(server.tcp, "main", "bob").await;
    bob.err("NEW r1:bob", "ROOM_EXISTS").await;
    bob.err("NEW main:bob", "MAIN_ROOM").await;
    bob.err("NEW bad#room:bob", "BAD_NAME").await;
    bob.err("NEW", "BAD_SYNTAX").await;
    bob.err("JOIN nope:bob", "NO_SUCH_ROOM").await;
    bob.err("JOIN", "BAD_SYNTAX").await;
    bob.err("JOIN main:bob", "ALREADY_JOINED").await;

    bob.ok("JOIN r1:bob", "OK JOIN r1:bob").await;
    alice.expect_push("JOINED r1:bob").await;
    bob.err("JOIN r1:bob", "ALREADY_JOINED").await;
    // HELLO of a room already joined is still OK.
    bob.ok("HELLO r1:bob", "OK HELLO r1:bob").await;

    // NEW by a registered client creates and joins.
    bob.ok("NEW r2:bob", "OK NEW r2:bob").await;
    let rooms = bob.list_items("LIST CHAT_ROOMS", "CHAT_ROOMS").await;
    assert_eq!(rooms, ["ROOM main 1", "ROOM r1 2", "ROOM r2 1"]);

    // alice joins main via HELLO: bob (in main) sees it.
    alice.ok("HELLO main:alice", "OK HELLO main:alice").await;
    bob.expect_push("JOINED main:alice").await;
}

#[tokio::test]
async fn identity_and_name_taken() {
    let server = Server::start(&[]);
    let mut alice = LineClient::hello(server.tcp, "main", "alice").await;
    let mut bob = LineClient::hello(server.tcp, "main", "bob").await;
    alice.expect_push("JOINED main:bob").await;

    // The connection is bound to alice: naming another client is IDENTITY.
    alice.err("HELLO main:carol", "IDENTITY").await;
    alice.err("SEND main:bob pretending", "IDENTITY").await;
    alice.err("TO main:bob alice pretending", "IDENTITY").await;
    alice.err("PAUSE main:bob", "IDENTITY").await;
    alice.err("RESUME main:bob", "IDENTITY").await;
    alice.err("LEAVE main:bob", "IDENTITY").await;
    alice.err("QUIT main:bob", "IDENTITY").await;
    alice.err("NEW r9:bob", "IDENTITY").await;
    bob.ok("NEW r5:bob", "OK NEW r5:bob").await;
    alice.err("JOIN r5:bob", "IDENTITY").await;
    alice.err("JOIN r5:carol", "IDENTITY").await;

    // A name held by a live connection cannot be taken by another one.
    let mut other = LineClient::connect(server.tcp).await;
    other.err("HELLO main:alice", "NAME_TAKEN").await;
    other.err("NEW r2:bob", "NAME_TAKEN").await;
    // The failed attempts did not bind the connection: it can still register freely.
    other.ok("HELLO main:carol", "OK HELLO main:carol").await;
    alice.expect_push("JOINED main:carol").await;
    bob.expect_push("JOINED main:carol").await;

    // Names are case-sensitive: Alice is not alice.
    let mut cap = LineClient::connect(server.tcp).await;
    cap.ok("HELLO main:Alice", "OK HELLO main:Alice").await;
}

#[tokio::test]
async fn send_errors() {
    let server = Server::start(&[]);
    let mut alice = LineClient::hello(server.tcp, "main", "alice").await;
    let mut bob = LineClient::connect(server.tcp).await;
    bob.ok("NEW r1:bob", "OK NEW r1:bob").await;

    alice.err("SEND main:alice", "BAD_SYNTAX").await;
    alice.err("SEND main:alice    ", "BAD_SYNTAX").await;
    alice.err("SEND", "BAD_SYNTAX").await;
    alice.err("SEND nope:alice hi", "NO_SUCH_ROOM").await;
    alice.err("SEND r1:alice hi", "NOT_REGISTERED").await;
    // Nothing reached bob.
    alice.ok("HELLO r1:alice", "OK HELLO r1:alice").await;
    bob.expect_push("JOINED r1:alice").await;
    alice.ok("SEND r1:alice first", "OK SEND r1 1").await;
    bob.expect_push("MSG r1:alice first").await;
}

#[tokio::test]
async fn to_direct_messages() {
    let server = Server::start(&[]);
    let mut alice = LineClient::hello(server.tcp, "main", "alice").await;
    let mut bob = LineClient::hello(server.tcp, "main", "bob").await;
    alice.expect_push("JOINED main:bob").await;
    let mut carol = LineClient::connect(server.tcp).await;
    carol.ok("NEW r1:carol", "OK NEW r1:carol").await;

    alice
        .ok("TO main:alice bob psst  hey", "OK TO main:bob 1")
        .await;
    bob.expect_push("MSG FROM main:alice psst  hey").await;

    // Errors.
    alice.err("TO main:alice nobody hi", "NO_SUCH_CLIENT").await;
    alice.err("TO main:alice carol hi", "NO_SUCH_CLIENT").await; // carol is not in main
    alice.err("TO main:alice bob", "BAD_SYNTAX").await;
    alice.err("TO main:alice", "BAD_SYNTAX").await;
    alice.err("TO nope:alice bob hi", "NO_SUCH_ROOM").await;
    alice.err("TO r1:alice carol hi", "NOT_REGISTERED").await;

    // To a suspended target: 0 delivered, and nothing arrives after resume.
    bob.ok("PAUSE main:bob", "OK PAUSE main:bob").await;
    alice.ok("TO main:alice bob lost", "OK TO main:bob 0").await;
    bob.ok("RESUME main:bob", "OK RESUME main:bob").await;
    alice.ok("TO main:alice bob kept", "OK TO main:bob 1").await;
    bob.expect_push("MSG FROM main:alice kept").await;

    // Only the target receives a direct message.
    carol.ok("HELLO main:carol", "OK HELLO main:carol").await;
    alice.expect_push("JOINED main:carol").await;
    bob.expect_push("JOINED main:carol").await;
    bob.ok("TO main:bob carol for carol", "OK TO main:carol 1")
        .await;
    carol.expect_push("MSG FROM main:bob for carol").await;
    bob.ok("SEND main:bob everyone", "OK SEND main 2").await;
    alice.expect_push("MSG main:bob everyone").await;
    carol.expect_push("MSG main:bob everyone").await;
}

#[tokio::test]
async fn list_all_types() {
    let server = Server::start(&[]);
    let mut alice = LineClient::hello(server.tcp, "main", "alice").await;
    let mut bob = LineClient::hello(server.tcp, "main", "bob").await;
    bob.ok("NEW r1:bob", "OK NEW r1:bob").await;
    bob.ok("SEND r1:bob hi", "OK SEND r1 0").await;
    alice.expect_push("JOINED main:bob").await;

    assert_eq!(
        alice.list_items("LIST CHAT_ROOMS", "CHAT_ROOMS").await,
        ["ROOM main 2", "ROOM r1 1"]
    );
    assert_eq!(
        alice.list_items("LIST ALL", "ALL").await,
        [
            "ROOM main 2",
            "CLIENT alice CONNECTED",
            "CLIENT bob CONNECTED",
            "ROOM r1 1",
            "CLIENT bob ACTIVE",
        ]
    );
    assert_eq!(
        alice
            .list_items("LIST CHAT_ROOM_AND_CLIENTS", "CHAT_ROOM_AND_CLIENTS")
            .await,
        [
            "ROOM main 2",
            "CLIENT alice",
            "CLIENT bob",
            "ROOM r1 1",
            "CLIENT bob"
        ]
    );
    assert_eq!(
        alice
            .list_items("LIST CLIENT_CHAT_ROOMS bob", "CLIENT_CHAT_ROOMS")
            .await,
        ["ROOM main CONNECTED", "ROOM r1 ACTIVE"]
    );
    assert_eq!(
        alice
            .list_items("LIST CLIENTS_FOR_CHAT_ROOM main", "CLIENTS_FOR_CHAT_ROOM")
            .await,
        ["CLIENT alice CONNECTED", "CLIENT bob CONNECTED"]
    );

    // The seed's form `LIST room:client TYPE [arg]`: the room:client token is ignored.
    assert_eq!(
        alice
            .list_items("LIST main:alice CHAT_ROOMS", "CHAT_ROOMS")
            .await,
        ["ROOM main 2", "ROOM r1 1"]
    );
    assert_eq!(
        alice
            .list_items(
                "LIST main:alice CLIENTS_FOR_CHAT_ROOM r1",
                "CLIENTS_FOR_CHAT_ROOM"
            )
            .await,
        ["CLIENT bob ACTIVE"]
    );
    assert_eq!(
        alice
            .list_items(
                "LIST main:alice CLIENT_CHAT_ROOMS alice",
                "CLIENT_CHAT_ROOMS"
            )
            .await,
        ["ROOM main CONNECTED"]
    );
    assert_eq!(
        alice.list_items("LIST main:alice ALL", "ALL").await.len(),
        5
    );

    // An unregistered connection can list too, also with the seed's form.
    let mut anon = LineClient::connect(server.tcp).await;
    assert_eq!(
        anon.list_items("LIST x:y CHAT_ROOMS", "CHAT_ROOMS").await,
        ["ROOM main 2", "ROOM r1 1"]
    );

    // Types are case-insensitive, and so is the command word.
    let (header, items) = anon.list("list chat_rooms").await;
    assert!(
        header.eq_ignore_ascii_case("OK LIST CHAT_ROOMS 2"),
        "header {header:?}"
    );
    assert_eq!(items, ["ROOM main 2", "ROOM r1 1"]);
    let (_, items) = anon.list("LiSt Clients_For_Chat_Room r1").await;
    assert_eq!(items, ["CLIENT bob ACTIVE"]);

    // Errors.
    anon.err("LIST", "BAD_SYNTAX").await;
    anon.err("LIST CLIENT_CHAT_ROOMS", "BAD_SYNTAX").await;
    anon.err("LIST CLIENTS_FOR_CHAT_ROOM", "BAD_SYNTAX").await;
    anon.err("LIST main:alice CLIENT_CHAT_ROOMS", "BAD_SYNTAX")
        .await;
    anon.err("LIST CLIENT_CHAT_ROOMS zed", "NO_SUCH_CLIENT")
        .await;
    anon.err("LIST CLIENTS_FOR_CHAT_ROOM nope", "NO_SUCH_ROOM")
        .await;
    anon.err("LIST BOGUS", "BAD_LIST_TYPE").await;
    anon.err("LIST main:alice BOGUS", "BAD_LIST_TYPE").await;

    // The connection still works after the errors.
    assert_eq!(
        anon.list_items("LIST CHAT_ROOMS", "CHAT_ROOMS").await.len(),
        2
    );
}

#[tokio::test]
async fn list_orders_rooms_and_members_by_name() {
    let server = Server::start(&[]);
    let mut zed = LineClient::connect(server.tcp).await;
    zed.ok("NEW zz:zed", "OK NEW zz:zed").await;
    let mut amy = LineClient::connect(server.tcp).await;
    amy.ok("NEW Ab:amy", "OK NEW Ab:amy").await;
    amy.ok("JOIN zz:amy", "OK JOIN zz:amy").await;
    let mut bea = LineClient::connect(server.tcp).await;
    bea.ok("NEW aa:bea", "OK NEW aa:bea").await;
    bea.ok("JOIN zz:bea", "OK JOIN zz:bea").await;

    // Byte order: "Ab" < "aa" < "main" < "zz".
    assert_eq!(
        bea.list_items("LIST CHAT_ROOMS", "CHAT_ROOMS").await,
        ["ROOM Ab 1", "ROOM aa 1", "ROOM main 0", "ROOM zz 3"]
    );
    assert_eq!(
        bea.list_items("LIST CLIENTS_FOR_CHAT_ROOM zz", "CLIENTS_FOR_CHAT_ROOM")
            .await,
        [
            "CLIENT amy CONNECTED",
            "CLIENT bea CONNECTED",
            "CLIENT zed CONNECTED"
        ]
    );
    assert_eq!(
        bea.list_items("LIST CLIENT_CHAT_ROOMS amy", "CLIENT_CHAT_ROOMS")
            .await,
        ["ROOM Ab CONNECTED", "ROOM zz CONNECTED"]
    );
}

#[tokio::test]
async fn pause_resume_leave() {
    let server = Server::start(&[]);
    let mut alice = LineClient::hello(server.tcp, "main", "alice").await;
    let mut bob = LineClient::hello(server.tcp, "main", "bob").await;
    alice.expect_push("JOINED main:bob").await;

    bob.ok("PAUSE main:bob", "OK PAUSE main:bob").await;
    alice
        .ok("SEND main:alice while paused", "OK SEND main 0")
        .await;
    bob.ok("RESUME main:bob", "OK RESUME main:bob").await;
    alice
        .ok("SEND main:alice after resume", "OK SEND main 1")
        .await;
    // The message sent while paused was not kept.
    bob.expect_push("MSG main:alice after resume").await;

    // Errors.
    bob.err("PAUSE nope:bob", "NO_SUCH_ROOM").await;
    bob.err("RESUME nope:bob", "NO_SUCH_ROOM").await;
    bob.err("LEAVE nope:bob", "NO_SUCH_ROOM").await;
    alice.ok("NEW r1:alice", "OK NEW r1:alice").await;
    bob.err("PAUSE r1:bob", "NOT_REGISTERED").await;
    bob.err("RESUME r1:bob", "NOT_REGISTERED").await;
    bob.err("LEAVE r1:bob", "NOT_REGISTERED").await;
    bob.err("PAUSE", "BAD_SYNTAX").await;
    bob.err("PAUSE main:bob extra", "BAD_SYNTAX").await;

    // LEAVE: the others get LEFT; leaving again is NOT_REGISTERED.
    bob.ok("LEAVE main:bob", "OK LEAVE main:bob").await;
    alice.expect_push("LEFT main:bob").await;
    bob.err("LEAVE main:bob", "NOT_REGISTERED").await;
    alice
        .ok("SEND main:alice bob is gone", "OK SEND main 0")
        .await;

    // bob left his last room: still registered (name reserved) but listed nowhere.
    let mut other = LineClient::connect(server.tcp).await;
    other.err("HELLO main:bob", "NAME_TAKEN").await;
    assert_eq!(
        other.list_items("LIST ALL", "ALL").await,
        [
            "ROOM main 1",
            "CLIENT alice ACTIVE",
            "ROOM r1 1",
            "CLIENT alice CONNECTED"
        ]
    );
    // bob can come back on the same connection.
    bob.ok("HELLO main:bob", "OK HELLO main:bob").await;
    alice.expect_push("JOINED main:bob").await;

    // main survives being empty.
    alice.ok("LEAVE main:alice", "OK LEAVE main:alice").await;
    bob.expect_push("LEFT main:alice").await;
    bob.ok("LEAVE main:bob", "OK LEAVE main:bob").await;
    let rooms = other.list_items("LIST CHAT_ROOMS", "CHAT_ROOMS").await;
    assert_eq!(rooms.first().map(String::as_str), Some("ROOM main 0"));
}

#[tokio::test]
async fn quit_closes_and_frees_the_name() {
    let server = Server::start(&[]);
    let mut alice = LineClient::hello(server.tcp, "main", "alice").await;
    let mut bob = LineClient::hello(server.tcp, "main", "bob").await;
    alice.expect_push("JOINED main:bob").await;
    bob.ok("NEW r1:bob", "OK NEW r1:bob").await;
    alice.ok("JOIN r1:alice", "OK JOIN r1:alice").await;
    bob.expect_push("JOINED r1:alice").await;

    bob.err("QUIT main:alice", "IDENTITY").await;
    bob.ok("QUIT main:bob", "OK BYE").await;
    bob.expect_eof().await;

    // alice gets a LEFT for each room bob was in.
    let mut lefts = vec![alice.next_push().await, alice.next_push().await];
    lefts.sort();
    assert_eq!(lefts, ["LEFT main:bob", "LEFT r1:bob"]);

    // The name is free again.
    let mut bob2 = LineClient::hello(server.tcp, "main", "bob").await;
    alice.expect_push("JOINED main:bob").await;
    assert_eq!(
        bob2.list_items("LIST CLIENT_CHAT_ROOMS bob", "CLIENT_CHAT_ROOMS")
            .await,
        ["ROOM main CONNECTED"]
    );
}

#[tokio::test]
async fn closed_connection_is_removed() {
    let server = Server::start(&[]);
    let mut alice = LineClient::hello(server.tcp, "main", "alice").await;
    let bob = LineClient::hello(server.tcp, "main", "bob").await;
    alice.expect_push("JOINED main:bob").await;
    drop(bob);
    alice.expect_push("LEFT main:bob").await;
    let mut bob2 = LineClient::connect(server.tcp).await;
    bob2.ok("HELLO main:bob", "OK HELLO main:bob").await;
}

#[tokio::test]
async fn command_words_are_case_insensitive() {
    let server = Server::start(&[]);
    let mut alice = LineClient::connect(server.tcp).await;
    alice.ok("hello main:alice", "OK HELLO main:alice").await;
    let mut bob = LineClient::connect(server.tcp).await;
    bob.ok("New r1:bob", "OK NEW r1:bob").await;
    alice.ok("jOiN r1:alice", "OK JOIN r1:alice").await;
    bob.expect_push("JOINED r1:alice").await;
    alice.ok("send r1:alice lower", "OK SEND r1 1").await;
    bob.expect_push("MSG r1:alice lower").await;
    alice.ok("To r1:alice bob direct", "OK TO r1:bob 1").await;
    bob.expect_push("MSG FROM r1:alice direct").await;
    bob.ok("pause r1:bob", "OK PAUSE r1:bob").await;
    bob.ok("Resume r1:bob", "OK RESUME r1:bob").await;
    bob.ok("leave r1:bob", "OK LEAVE r1:bob").await;
    alice.expect_push("LEFT r1:bob").await;
    let (header, items) = alice.list("list all").await;
    assert!(header.eq_ignore_ascii_case("OK LIST ALL 4"), "{header:?}");
    assert_eq!(
        items,
        [
            "ROOM main 1",
            "CLIENT alice CONNECTED",
            "ROOM r1 1",
            "CLIENT alice ACTIVE"
        ]
    );
    alice.ok("quit main:alice", "OK BYE").await;
    alice.expect_eof().await;
}

#[tokio::test]
async fn crlf_pipelining_and_blank_lines() {
    let server = Server::start(&[]);
    let mut c = LineClient::connect(server.tcp).await;
    // Blank lines are ignored; CRLF is accepted; several commands in one write are answered in order.
    c.send_raw(
        b"\n   \nHELLO main:alice\r\nNEW r1:alice\nSEND r1:alice x y\r\nLIST CHAT_ROOMS\r\n",
    )
    .await;
    c.expect_line("OK HELLO main:alice").await;
    c.expect_line("OK NEW r1:alice").await;
    c.expect_line("OK SEND r1 0").await;
    c.expect_line("OK LIST CHAT_ROOMS 2").await;
    c.expect_line("ROOM main 1").await;
    c.expect_line("ROOM r1 1").await;
    c.expect_line("END").await;
    // A command split over several writes.
    c.send_raw(b"SEND r1:al").await;
    c.send_raw(b"ice split\n").await;
    c.expect_line("OK SEND r1 0").await;
}

#[tokio::test]
async fn eof_terminated_commands() {
    let server = Server::start(&[]);
    let mut stay = LineClient::hello(server.tcp, "main", "stay").await;
    stay.ok("NEW r2:stay", "OK NEW r2:stay").await;

    // `printf 'NEW r1:alice ' | nc -N`: executed, answered, then the server closes.
    let mut once = LineClient::connect(server.tcp).await;
    once.send_raw(b"NEW r1:alice ").await;
    once.shutdown_write().await;
    once.expect_line("OK NEW r1:alice").await;
    once.expect_eof().await;

    // A JOIN by EOF: the member is added, then removed as the connection closes.
    let mut carol = LineClient::connect(server.tcp).await;
    carol.send_raw(b"JOIN r2:carol").await;
    carol.shutdown_write().await;
    carol.expect_line("OK JOIN r2:carol").await;
    carol.expect_eof().await;
    stay.expect_push("JOINED r2:carol").await;
    stay.expect_push("LEFT r2:carol").await;

    // A SEND by EOF from a fresh client reaches the staying member.
    let mut dave = LineClient::connect(server.tcp).await;
    dave.send_raw(b"HELLO main:dave\nSEND main:dave bye now")
        .await;
    dave.shutdown_write().await;
    dave.expect_line("OK HELLO main:dave").await;
    dave.expect_line("OK SEND main 1").await;
    dave.expect_eof().await;
    stay.expect_push("JOINED main:dave").await;
    stay.expect_push("MSG main:dave bye now").await;
    stay.expect_push("LEFT main:dave").await;

    // A LIST by EOF; alice's connection is closed, but r1 stays (§1: rooms outlive their
    // members, so a later one-command connection can JOIN it).
    let expected = [
        "OK LIST CHAT_ROOMS 3",
        "ROOM main 1",
        "ROOM r1 0",
        "ROOM r2 1",
        "END",
    ];
    let deadline = std::time::Instant::now() + common::TIMEOUT;
    loop {
        let mut c = LineClient::connect(server.tcp).await;
        c.send_raw(b"LIST CHAT_ROOMS").await;
        c.shutdown_write().await;
        let lines = c.read_to_eof().await;
        if lines == expected {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "alice was not removed after her connection closed; LIST by EOF gave {lines:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn rooms_outlive_their_members_until_deleted() {
    let server = Server::start(&[]);
    let http = server.http();
    let mut watch = LineClient::hello(server.tcp, "main", "watch").await;

    // §1: a room stays when its last member leaves (LEAVE, QUIT or a closed connection)...
    let mut alice = LineClient::connect(server.tcp).await;
    alice.ok("NEW r1:alice", "OK NEW r1:alice").await;
    alice.ok("LEAVE r1:alice", "OK LEAVE r1:alice").await;
    assert_eq!(
        watch.list_items("LIST CHAT_ROOMS", "CHAT_ROOMS").await,
        ["ROOM main 1", "ROOM r1 0"]
    );
    alice.ok("JOIN r1:alice", "OK JOIN r1:alice").await;
    alice.ok("QUIT r1:alice", "OK BYE").await;
    alice.expect_eof().await;
    let mut bob = LineClient::connect(server.tcp).await;
    bob.ok("NEW r2:bob", "OK NEW r2:bob").await;
    drop(bob);
    server.wait_client_count(1).await;
    assert_eq!(
        watch.list_items("LIST CHAT_ROOMS", "CHAT_ROOMS").await,
        ["ROOM main 1", "ROOM r1 0", "ROOM r2 0"]
    );

    // ...so a later connection can join it (the seed's one-command-per-connection workflow).
    watch.ok("JOIN r1:watch", "OK JOIN r1:watch").await;

    // DELETE removes an empty room only, and never main.
    http.request("DELETE", "/chatrooms/r1", &[], None)
        .await
        .assert_error(409, "ROOM_NOT_EMPTY");
    http.request("DELETE", "/chatrooms/main", &[], None)
        .await
        .assert_error(409, "MAIN_ROOM");
    http.request("DELETE", "/chatrooms/nope", &[], None)
        .await
        .assert_error(404, "NO_SUCH_ROOM");
    watch.ok("LEAVE r1:watch", "OK LEAVE r1:watch").await;
    let resp = http.request("DELETE", "/chatrooms/r1", &[], None).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.json()["status"], "deleted");
    assert_eq!(
        watch.list_items("LIST CHAT_ROOMS", "CHAT_ROOMS").await,
        ["ROOM main 1", "ROOM r2 0"]
    );
    watch.err("JOIN r1:watch", "NO_SUCH_ROOM").await;
}

#[tokio::test]
async fn statuses_in_list() {
    let server = Server::start(&[]);
    // A connection that has not registered is NEW: it is not a member anywhere and not counted.
    let mut anon = LineClient::connect(server.tcp).await;
    assert_eq!(anon.list_items("LIST ALL", "ALL").await, ["ROOM main 0"]);
    assert_eq!(server.client_count().await, 0);

    let mut alice = LineClient::hello(server.tcp, "main", "alice").await;
    let mut bob = LineClient::hello(server.tcp, "main", "bob").await;
    alice.expect_push("JOINED main:bob").await;
    assert_eq!(server.client_count().await, 2);
    assert_eq!(
        anon.list_items("LIST ALL", "ALL").await,
        [
            "ROOM main 2",
            "CLIENT alice CONNECTED",
            "CLIENT bob CONNECTED"
        ]
    );

    // SEND makes the sender ACTIVE.
    alice.ok("SEND main:alice hi", "OK SEND main 1").await;
    bob.expect_push("MSG main:alice hi").await;
    assert_eq!(
        anon.list_items("LIST ALL", "ALL").await,
        ["ROOM main 2", "CLIENT alice ACTIVE", "CLIENT bob CONNECTED"]
    );

    // PAUSE → SUSPENDED; RESUME → back to the previous status.
    alice.ok("PAUSE main:alice", "OK PAUSE main:alice").await;
    bob.ok("PAUSE main:bob", "OK PAUSE main:bob").await;
    assert_eq!(
        anon.list_items("LIST ALL", "ALL").await,
        [
            "ROOM main 2",
            "CLIENT alice SUSPENDED",
            "CLIENT bob SUSPENDED"
        ]
    );
    alice.ok("RESUME main:alice", "OK RESUME main:alice").await;
    bob.ok("RESUME main:bob", "OK RESUME main:bob").await;
    assert_eq!(
        anon.list_items("LIST ALL", "ALL").await,
        ["ROOM main 2", "CLIENT alice ACTIVE", "CLIENT bob CONNECTED"]
    );

    // SEND while suspended resumes the membership (and makes it ACTIVE).
    bob.ok("PAUSE main:bob", "OK PAUSE main:bob").await;
    alice
        .ok("SEND main:alice not for bob", "OK SEND main 0")
        .await;
    bob.ok("SEND main:bob i am back", "OK SEND main 1").await;
    alice.expect_push("MSG main:bob i am back").await;
    assert_eq!(
        anon.list_items("LIST ALL", "ALL").await,
        ["ROOM main 2", "CLIENT alice ACTIVE", "CLIENT bob ACTIVE"]
    );
    alice
        .ok("SEND main:alice for bob again", "OK SEND main 1")
        .await;
    // The message sent while bob was suspended was dropped; the next push is this one.
    bob.expect_push("MSG main:alice for bob again").await;

    // TO makes the sender ACTIVE too, and TO while suspended resumes.
    let mut carol = LineClient::hello(server.tcp, "main", "carol").await;
    alice.expect_push("JOINED main:carol").await;
    bob.expect_push("JOINED main:carol").await;
    carol.ok("PAUSE main:carol", "OK PAUSE main:carol").await;
    carol
        .ok("TO main:carol alice psst", "OK TO main:alice 1")
        .await;
    alice.expect_push("MSG FROM main:carol psst").await;
    assert_eq!(
        anon.list_items("LIST CLIENTS_FOR_CHAT_ROOM main", "CLIENTS_FOR_CHAT_ROOM")
            .await,
        [
            "CLIENT alice ACTIVE",
            "CLIENT bob ACTIVE",
            "CLIENT carol ACTIVE"
        ]
    );

    // Status is per membership.
    carol.ok("NEW r1:carol", "OK NEW r1:carol").await;
    carol.ok("PAUSE main:carol", "OK PAUSE main:carol").await;
    assert_eq!(
        anon.list_items("LIST CLIENT_CHAT_ROOMS carol", "CLIENT_CHAT_ROOMS")
            .await,
        ["ROOM main SUSPENDED", "ROOM r1 CONNECTED"]
    );
    alice.ok("JOIN r1:alice", "OK JOIN r1:alice").await;
    alice
        .ok("SEND main:alice main only", "OK SEND main 1")
        .await;
    bob.expect_push("MSG main:alice main only").await;
    alice.ok("SEND r1:alice r1 only", "OK SEND r1 1").await;
    carol.expect_push("JOINED r1:alice").await;
    carol.expect_push("MSG r1:alice r1 only").await;
}

#[tokio::test]
async fn error_lines_have_a_message() {
    let server = Server::start(&[]);
    let mut c = LineClient::connect(server.tcp).await;
    for (cmd, code) in [
        ("HELLO nope:a", "NO_SUCH_ROOM"),
        ("FROB", "BAD_COMMAND"),
        ("LIST NOPE", "BAD_LIST_TYPE"),
    ] {
        let reply = c.cmd(cmd).await;
        assert_error(&reply, code);
        let message = reply
            .strip_prefix(&format!("ERROR {code}"))
            .expect("prefix checked");
        assert!(
            !message.trim().is_empty(),
            "error line {reply:?} has no message"
        );
    }
}
