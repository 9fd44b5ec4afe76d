//! The captured run of stock sidekick-py 0.0.7 (`tests/fixtures/ui/sidekick-trace-0.0.7.jsonl`)
//! replayed through the relay: the live UI gets every frame verbatim, and a UI that connects
//! late (or reloads) gets a compacted log that renders the same page.

mod common;

use common::{NOW, Ui, announce, content, drain, late_ui, trace};
use tether_relay::{ConnId, Relay};

/// A relay with a UI on 2 online, then the hero on 1 sending `frames` (its announce first).
fn run(frames: &[String]) -> (Relay, Vec<String>) {
    let mut r = Relay::default();
    r.handle_connect(ConnId(2), "");
    r.handle_text(
        ConnId(2),
        &announce("sidekick-live", "sidekick", "online"),
        NOW,
    );
    r.handle_connect(ConnId(1), "");
    let mut live = Vec::new();
    for f in frames {
        r.handle_text(ConnId(1), f, NOW);
        let d = drain(&mut r);
        assert!(d.closes.is_empty(), "{:?}", d.closes);
        assert!(
            d.to(1).iter().all(|t| t.contains("announce")),
            "no echo to the hero"
        );
        r.handle_sent(ConnId(2), usize::MAX);
        live.extend(d.to(2));
    }
    (r, live)
}

fn render(frames: &[String]) -> Ui {
    let mut ui = Ui::new();
    for f in frames {
        ui.apply(f);
    }
    ui
}

#[test]
fn the_live_ui_gets_every_frame_verbatim() {
    let t = trace();
    assert_eq!(t.len(), 61, "the fixture changed");
    let (_, live) = run(&t);
    assert_eq!(
        live, t,
        "every hero frame, announces included, byte for byte"
    );
}

#[test]
fn a_late_ui_after_the_final_clear_all_gets_an_empty_page() {
    let t = trace();
    let (mut r, _) = run(&t);
    let got = late_ui(&mut r, 3);
    assert_eq!(
        got,
        vec![r#"{"id":0,"component":"global","type":"clearAll"}"#.to_owned()]
    );
}

#[test]
fn a_late_ui_gets_the_compacted_page() {
    let t = trace();
    // Everything up to the script's final clearAll.
    let drawn = &t[..59];
    let (mut r, live) = run(drawn);
    let got = late_ui(&mut r, 3);
    let expected: Vec<String> =
        std::iter::once(r#"{"id":0,"component":"global","type":"clearAll"}"#.to_owned())
            .chain(
                [
                    2, 3, 4, 5, 6, 7, 9, 10, 12, 13, 14, 15, 16, 19, 45, 46, 47, 48, 49, 50, 51,
                    52, 54,
                ]
                .iter()
                .map(|&i| t[i].clone()),
            )
            .collect();
    assert_eq!(got, expected);
    assert_eq!(render(&got).view(), render(&live).view(), "same page");
    let log = r.log("").map(|l| (l.len(), l.bytes())).unwrap_or_default();
    assert_eq!(log.0, 23);
    let sent: usize = live.iter().map(String::len).sum();
    assert!(log.1 < sent, "compacted: {} of {sent} bytes", log.1);
}

#[test]
fn every_prefix_of_the_trace_replays_to_the_live_page() {
    let t = trace();
    for n in 1..=t.len() {
        let (mut r, live) = run(&t[..n]);
        let got = late_ui(&mut r, 3);
        if n >= 2 {
            assert_eq!(
                render(&got).view(),
                render(&live).view(),
                "after {n} frames"
            );
        }
    }
}

#[test]
fn a_reloaded_ui_gets_the_page_again_and_so_does_one_after_the_hero_left() {
    let t = trace();
    let drawn = &t[..59];
    let (mut r, live) = run(drawn);
    // Reload: the same page's socket closes and a new one announces the same peer.
    r.handle_close(ConnId(2), NOW);
    drain(&mut r);
    r.handle_connect(ConnId(4), "");
    r.handle_text(
        ConnId(4),
        &announce("sidekick-live", "sidekick", "online"),
        NOW,
    );
    let d = drain(&mut r);
    let reloaded = content(d.to(4));
    assert_eq!(render(&reloaded).view(), render(&live).view());
    // The hero says goodbye and leaves; a UI opened afterwards still shows the page.
    r.handle_text(ConnId(1), &t[60], NOW);
    r.handle_close(ConnId(1), NOW);
    let d = drain(&mut r);
    assert_eq!(
        d.to(4),
        vec![t[60].clone()],
        "the hero's own offline, no synthesized one"
    );
    let later = late_ui(&mut r, 5);
    assert_eq!(render(&later).view(), render(&live).view());
}
