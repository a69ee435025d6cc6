//! The AdmissionReview handler: raw bytes in, an HTTP answer out, through the webhook's router
//! (body limit, timeout and panic layers included).
#![no_main]

use libfuzzer_sys::fuzz_target;
use osartifact_fuzz::post;

fuzz_target!(|data: &[u8]| {
    for path in ["/validate", "/mutate"] {
        let (status, body) = post(path, data);
        match status.as_u16() {
            // A review: JSON that echoes a non-empty uid, a denial with a message.
            200 => {
                let v: serde_json::Value =
                    serde_json::from_slice(&body).expect("a 200 carries JSON");
                let uid = v.pointer("/response/uid").and_then(|u| u.as_str());
                assert!(uid.is_some_and(|u| !u.is_empty()), "no uid: {v}");
                if v.pointer("/response/allowed") == Some(&serde_json::Value::Bool(false)) {
                    let msg = v
                        .pointer("/response/status/message")
                        .and_then(|m| m.as_str());
                    assert!(
                        msg.is_some_and(|m| !m.is_empty()),
                        "denied without a message: {v}"
                    );
                }
            }
            // Not a review at all: a message saying why.
            400 => assert!(!body.is_empty(), "a 400 without a message"),
            other => panic!(
                "unexpected status {other}: {}",
                String::from_utf8_lossy(&body)
            ),
        }
    }
});
