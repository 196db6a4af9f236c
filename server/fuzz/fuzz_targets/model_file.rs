//! Fuzz target: the model file loader (`SnnModel::from_bytes`, the
//! safetensors header, tensors and `cx.*` metadata).
//!
//! Any input gives a model or an error, never a panic. An accepted model
//! holds its invariants: one offer id per output column, none repeated,
//! and at least one step.
//!
//! Seeds: `seeds/model_file/` (the small snnTorch fixture model).
#![no_main]

use cx_model::SnnModel;
use libfuzzer_sys::fuzz_target;
use std::collections::HashSet;

fuzz_target!(|data: &[u8]| {
    let model = match SnnModel::from_bytes(data) {
        Ok(model) => model,
        Err(error) => {
            let _ = error.to_string();
            return;
        }
    };
    let ids = &model.meta().offer_ids;
    assert_eq!(ids.len(), model.outputs(), "one offer id per output column");
    let distinct: HashSet<u64> = ids.iter().copied().collect();
    assert_eq!(distinct.len(), ids.len(), "no offer id repeated");
    assert!(model.steps() >= 1);
});
