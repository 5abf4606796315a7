//! Replay to a route, end to end on the embedded log: `eaibus replay --topic T --from-time W
//! --route R` sends the window of T to R again — including messages R already received — and
//! nothing else: not the messages before the window, not the deliveries of other routes; with
//! `--dry-run` it sends nothing.

mod support;

use std::time::Duration;

use eaibus::monitor::{DeliveryOutcome, Situation};
use eaibus::order::replay::{self, ReplayFrom, ReplayRequest, ReplayTarget};
use support::*;

async fn customer(e: &Eaibus, uuid: &str) {
    let (status, body) = e
        .post_json(&customer_vendor(uuid, &format!("OMNI-CLI-{}", tag())))
        .await;
    assert_eq!(status, 200, "{body}");
    e.wait_delivery(uuid, &e.routes.protheus, Situation::Finalizada)
        .await;
}

/// The UUIDs of the CustomerVendor requests the fake Protheus received, in order.
fn received(e: &Eaibus) -> Vec<String> {
    e.fake
        .requests_for("CUSTOMERVENDOR")
        .into_iter()
        .map(|r| r.uuid)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_sends_the_window_again_to_its_route_only() {
    let e = Eaibus::start("replay", Options::default()).await;
    let protheus = e.routes.protheus.clone();
    let before = fresh_uuid();
    customer(&e, &before).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let window_start = chrono::Utc::now().timestamp_millis();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let inside = fresh_uuid();
    customer(&e, &inside).await;
    assert_eq!(received(&e), [before.clone(), inside.clone()]);
    // The message in the window was also delivered along another route, which is not replayed.
    e.bus
        .monitor
        .record_attempt(
            &inside,
            &e.routes.omni,
            &DeliveryOutcome::Delivered {
                response: "appended elsewhere".into(),
            },
        )
        .await
        .expect("recorded");
    let other_route = e
        .bus
        .monitor
        .delivery(&inside, &e.routes.omni)
        .await
        .expect("read");
    let delivered_once = e
        .bus
        .monitor
        .delivery(&inside, &protheus)
        .await
        .expect("read")
        .expect("delivered");

    let request = ReplayRequest {
        topic: "CustomerVendor".into(),
        from: ReplayFrom::Time(window_start),
        until: None,
        target: ReplayTarget::Route(protheus.clone()),
        dry_run: true,
    };
    let dry = replay::replay(&e.bus, request.clone(), false)
        .await
        .expect("a dry run");
    assert_eq!((dry.records, dry.resent, dry.planned), (1, 1, 0), "{dry}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(received(&e).len(), 2, "a dry run sends nothing");
    assert_eq!(
        e.bus
            .monitor
            .delivery(&inside, &protheus)
            .await
            .expect("read"),
        Some(delivered_once.clone())
    );

    let done = replay::replay(
        &e.bus,
        ReplayRequest {
            dry_run: false,
            ..request
        },
        false,
    )
    .await
    .expect("the replay");
    assert_eq!((done.records, done.resent), (1, 1), "{done}");
    assert!(done.errors.is_empty(), "{done}");
    let requests = e.fake.wait_requests("CUSTOMERVENDOR", 3, PATIENCE).await;
    let again = e
        .wait_delivery(&inside, &protheus, Situation::Finalizada)
        .await;
    assert_eq!(requests[2].uuid, inside, "the message of the window, again");
    assert_eq!(again.attempts, 1, "a new cycle of attempts");
    let replays = e
        .bus
        .monitor
        .delivery_replays(&inside, &protheus)
        .await
        .expect("read");
    assert_eq!(replays.len(), 1);
    assert_eq!(replays[0].previous_situation, Situation::Finalizada);
    assert_eq!(
        replays[0].previous_delivered_at,
        delivered_once.delivered_at
    );
    let timeline = e.timeline(&inside).await;
    assert!(
        timeline.iter().any(
            |(route, _, _, detail)| route.as_deref() == Some(protheus.as_str())
                && detail
                    .as_deref()
                    .is_some_and(|d| d.starts_with("Reenvio 1"))
        ),
        "{timeline:#?}"
    );
    e.wait_situation(&inside, Situation::Finalizada).await;

    // Outside the window and along other routes: untouched.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(received(&e).len(), 3);
    assert!(
        e.bus
            .monitor
            .delivery_replays(&before, &protheus)
            .await
            .expect("read")
            .is_empty()
    );
    assert_eq!(
        e.bus
            .monitor
            .delivery(&inside, &e.routes.omni)
            .await
            .expect("read"),
        other_route
    );
    e.stop().await;
}
