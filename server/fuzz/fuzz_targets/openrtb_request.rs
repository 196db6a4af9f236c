//! Fuzz target: the OpenRTB bid request parser and the engine's request
//! rules.
//!
//! `parse_request` on the input must return a request or an error naming
//! the field, never panic. An accepted request is planned by the engine's
//! one rule function (`plan_impressions`: one plan per impression, in
//! order), and written back as JSON, which must parse again to the same
//! request.
//!
//! Seeds: `seeds/openrtb_request/` (the OpenRTB fixtures of
//! `components/wire/tests/fixtures/openrtb/`).
#![no_main]

use cx_engine::openrtb::plan_impressions;
use cx_wire::openrtb::parse_request;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let request = match parse_request(data) {
        Ok(request) => request,
        Err(error) => {
            let _ = error.to_string();
            return;
        }
    };
    let plans = plan_impressions(&request);
    assert_eq!(plans.len(), request.imp.len(), "one plan per impression");
    for ((id, _), imp) in plans.iter().zip(&request.imp) {
        assert_eq!(id, &imp.id, "plans keep the impressions' order");
    }
    let written = serde_json::to_vec(&request).expect("a parsed request serialises");
    let again = parse_request(&written).expect("what was written parses again");
    assert_eq!(again, request, "the round trip keeps the request");
});
