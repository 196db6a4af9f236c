//! Corrupt input: the loader never panics and reports a broken container as
//! `Error::Container`. Anything it does accept satisfies every rule.

#[macro_use]
mod common;

use common::{Craft, SMALL};
use cx_model::limits;
use cx_model::{Error, SnnModel};
use proptest::prelude::*;
use safetensors::Dtype;

/// The fixture's header length (the first 8 bytes).
fn header_len(bytes: &[u8]) -> usize {
    u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize
}

/// A file with the given header text, padded to 8, and `data` after it.
fn with_header(header: &[u8], data: &[u8]) -> Vec<u8> {
    let mut h = header.to_vec();
    while !h.len().is_multiple_of(8) {
        h.push(b' ');
    }
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&h);
    out.extend_from_slice(data);
    out
}

#[track_caller]
fn assert_container(result: Result<SnnModel, Error>, what: &str) {
    match result {
        Err(Error::Container(msg)) => assert!(!msg.is_empty(), "{what}: empty message"),
        Err(other) => panic!("{what}: expected Error::Container, got {other:?}"),
        Ok(_) => panic!("{what}: a corrupt file was accepted"),
    }
}

/// When the loader accepts bytes, the model must be valid by construction:
/// `SnnModel::new` accepts the same parts, and the identity is the file hash.
fn check_accepted(model: &SnnModel, bytes: &[u8]) -> Result<(), TestCaseError> {
    let rebuilt = SnnModel::new(model.layers().to_vec(), model.steps(), model.meta().clone());
    prop_assert!(
        rebuilt.is_ok(),
        "accepted a model that new() refuses: {:?}",
        rebuilt.err()
    );
    prop_assert_eq!(model.id().to_string(), common::sha256_hex(bytes));
    Ok(())
}

#[test]
fn every_truncation_of_a_valid_file_is_a_container_error() {
    for len in 0..SMALL.len() {
        assert_container(
            SnnModel::from_bytes(&SMALL[..len]),
            &format!("prefix of {len} bytes"),
        );
    }
    SnnModel::from_bytes(SMALL).expect("the whole file loads");
}

#[test]
fn trailing_bytes_are_a_container_error() {
    for extra in [&[0u8][..], b"        ", &[0xff; 100]] {
        let mut bytes = SMALL.to_vec();
        bytes.extend_from_slice(extra);
        assert_container(
            SnnModel::from_bytes(&bytes),
            &format!("{} trailing bytes", extra.len()),
        );
    }
}

#[test]
fn empty_input_is_a_container_error() {
    assert_container(SnnModel::from_bytes(&[]), "empty input");
}

#[test]
fn bad_header_lengths_are_container_errors() {
    let n = header_len(SMALL);
    for bad in [
        SMALL.len() as u64,
        SMALL.len() as u64 - 7,
        n as u64 + 1,
        n as u64 - 1,
        0,
        100_000_001,
        u64::MAX,
        u64::MAX - 7,
        1 << 63,
    ] {
        let mut bytes = SMALL.to_vec();
        bytes[..8].copy_from_slice(&bad.to_le_bytes());
        assert_container(
            SnnModel::from_bytes(&bytes),
            &format!("header length {bad}"),
        );
    }
}

#[test]
fn headers_that_are_not_a_valid_safetensors_header_are_container_errors() {
    let cases: [(&str, &[u8]); 14] = [
        ("not JSON", b"this is not json"),
        ("invalid UTF-8", b"{\"__metadata__\":{\"steps\":\"\xff\xfe\"}}"),
        ("a JSON array", b"[1,2,3]"),
        ("a JSON string", b"\"fc1.weight\""),
        ("truncated JSON", br#"{"fc1.weight":{"dtype":"F32","shape":[1,1],"data_offsets":[0,4]"#),
        ("NUL bytes", b"\0\0\0\0\0\0\0\0"),
        ("unknown dtype", br#"{"fc1.weight":{"dtype":"F33","shape":[1,1],"data_offsets":[0,4]}}"#),
        ("no offsets", br#"{"fc1.weight":{"dtype":"F32","shape":[1,1]}}"#),
        ("negative shape", br#"{"fc1.weight":{"dtype":"F32","shape":[-1,1],"data_offsets":[0,4]}}"#),
        ("offsets past the data", br#"{"fc1.weight":{"dtype":"F32","shape":[1,1],"data_offsets":[0,8]}}"#),
        ("offsets reversed", br#"{"fc1.weight":{"dtype":"F32","shape":[0],"data_offsets":[4,0]}}"#),
        ("shape overflows", br#"{"fc1.weight":{"dtype":"F32","shape":[4294967296,4294967296,4],"data_offsets":[0,4]}}"#),
        ("numeric metadata", br#"{"__metadata__":{"steps":10}}"#),
        ("metadata not an object", br#"{"__metadata__":"steps=10"}"#),
    ];
    for (what, header) in cases {
        assert_container(SnnModel::from_bytes(&with_header(header, &[0; 4])), what);
    }
    // Two tensors over the same bytes.
    let overlap = br#"{"fc1.weight":{"dtype":"F32","shape":[1,1],"data_offsets":[0,4]},"fc1.bias":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#;
    assert_container(
        SnnModel::from_bytes(&with_header(overlap, &[0; 4])),
        "overlapping tensors",
    );
}

#[test]
fn a_well_formed_container_with_no_model_is_not_a_container_error() {
    // The container is fine; what is missing is the model, and the error says which part.
    let err = common::unwrap_err(SnnModel::from_bytes(&with_header(b"{}", &[])));
    assert!(!matches!(err, Error::Container(_)), "{err:?}");
    assert!(
        common::subject(&err).is_some(),
        "names what is missing: {err:?}"
    );
    assert_err!(
        SnnModel::from_bytes(&with_header(br#"{"__metadata__":{"steps":"4"}}"#, &[])),
        Error::MissingTensor { .. },
        "fc1.weight"
    );
}

/// Deterministic pseudo-random bytes (xorshift).
fn garbage(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect()
}

#[test]
fn garbage_bytes_are_container_errors() {
    for (len, seed) in [(1, 1), (7, 2), (8, 3), (64, 4), (4096, 5), (1 << 20, 6)] {
        assert_container(
            SnnModel::from_bytes(&garbage(len, seed)),
            &format!("{len} garbage bytes"),
        );
    }
    assert_container(SnnModel::from_bytes(&[0xff; 4096]), "all 0xff");
    assert_container(SnnModel::from_bytes(&[0; 4096]), "all zero");
}

#[test]
fn oversized_input_is_refused_by_size() {
    // from_bytes checks the length before parsing anything: an all-zero buffer
    // one byte over the limit is FileTooLarge, not a container error.
    let bytes = vec![0u8; limits::FILE_BYTES_MAX as usize + 1];
    let err = common::unwrap_err(SnnModel::from_bytes(&bytes));
    assert!(matches!(err, Error::FileTooLarge { .. }), "{err:?}");
}

#[test]
fn every_single_byte_change_in_the_header_never_panics() {
    // Each header byte replaced by a handful of interesting values: digits
    // (shapes, offsets), JSON punctuation, a NUL and a non-ASCII byte.
    let end = 8 + header_len(SMALL);
    let mut accepted = 0;
    for i in 0..end {
        for b in [b'0', b'1', b'9', b'"', b',', b'[', b'}', 0, 0xc3] {
            if SMALL[i] == b {
                continue;
            }
            let mut bytes = SMALL.to_vec();
            bytes[i] = b;
            if let Ok(model) = SnnModel::from_bytes(&bytes) {
                accepted += 1;
                check_accepted(&model, &bytes).unwrap();
            }
        }
    }
    // Changing the digits of "steps" or of the exported_by string still gives a valid model.
    assert!(accepted > 0, "some single-byte edits keep the file valid");
}

// ---------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------

/// How to change the fixture.
#[derive(Clone, Debug)]
enum Mutation {
    /// Overwrite one byte anywhere.
    Set(usize, u8),
    /// Flip one bit anywhere.
    Flip(usize, u8),
    /// Overwrite one byte of the header (where most of the structure is).
    SetHeader(usize, u8),
    /// Cut the file short.
    Truncate(usize),
    /// Insert a byte.
    Insert(usize, u8),
    /// Remove a byte.
    Remove(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let len = SMALL.len();
    let header_end = 8 + header_len(SMALL);
    prop_oneof![
        3 => (0..len, any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
        2 => (0..len, 0u8..8).prop_map(|(i, bit)| Mutation::Flip(i, bit)),
        4 => (0..header_end, prop::sample::select(b"0123456789[]{},:\" .-eE\0\xff".to_vec()))
            .prop_map(|(i, b)| Mutation::SetHeader(i, b)),
        1 => (0..len).prop_map(Mutation::Truncate),
        1 => (0..len, any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        1 => (0..len).prop_map(Mutation::Remove),
    ]
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    if bytes.is_empty() {
        return;
    }
    match *m {
        Mutation::Set(i, b) | Mutation::SetHeader(i, b) => {
            let i = i.min(bytes.len() - 1);
            bytes[i] = b;
        }
        Mutation::Flip(i, bit) => {
            let i = i.min(bytes.len() - 1);
            bytes[i] ^= 1 << bit;
        }
        Mutation::Truncate(n) => bytes.truncate(n),
        Mutation::Insert(i, b) => bytes.insert(i.min(bytes.len()), b),
        Mutation::Remove(i) => {
            if i < bytes.len() {
                bytes.remove(i);
            }
        }
    }
}

/// One tensor with a random dtype and shape: dims include 0 and widths far
/// past the limits, which a header can claim without holding any data.
fn wild_tensor() -> impl Strategy<Value = (Dtype, Vec<usize>)> {
    let dtype = prop::sample::select(vec![
        Dtype::F32,
        Dtype::F64,
        Dtype::F16,
        Dtype::I64,
        Dtype::I32,
        Dtype::U8,
    ]);
    let dim = prop_oneof![
        4 => 0usize..6,
        1 => Just(37usize),
        1 => Just(limits::WIDTH_MAX + 1),
        1 => Just(1usize << 40),
        1 => Just(usize::MAX),
    ];
    (dtype, prop::collection::vec(dim, 0..=3)).prop_filter(
        "at most 4096 elements of data",
        |(_, shape)| {
            shape
                .iter()
                .try_fold(1usize, |acc, &d| acc.checked_mul(d))
                .is_some_and(|n| n <= 4096)
        },
    )
}

const FIXTURE_TENSORS: [&str; 12] = [
    "fc1.weight",
    "fc1.bias",
    "fc2.weight",
    "fc2.bias",
    "lif1.beta",
    "lif1.threshold",
    "lif1.reset_mechanism_val",
    "lif1.graded_spikes_factor",
    "lif2.beta",
    "lif2.threshold",
    "lif2.reset_mechanism_val",
    "lif2.graded_spikes_factor",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        // Random bytes essentially never form a container; the point is no panic.
        if let Ok(model) = SnnModel::from_bytes(&bytes) {
            check_accepted(&model, &bytes)?;
        }
    }

    #[test]
    fn random_headers_never_panic(header in "[{}\\[\\]\":,0-9a-zA-Z_. -]{0,200}", data in prop::collection::vec(any::<u8>(), 0..64)) {
        // A correct length prefix, so the header JSON parser and what follows it get exercised.
        let bytes = with_header(header.as_bytes(), &data);
        if let Ok(model) = SnnModel::from_bytes(&bytes) {
            check_accepted(&model, &bytes)?;
        }
    }

    #[test]
    fn mutated_fixture_never_panics(mutations in prop::collection::vec(mutation(), 1..=4)) {
        let mut bytes = SMALL.to_vec();
        for m in &mutations {
            apply(&mut bytes, m);
        }
        match SnnModel::from_bytes(&bytes) {
            Ok(model) => check_accepted(&model, &bytes)?,
            Err(err) => prop_assert!(!err.to_string().is_empty()),
        }
    }

    #[test]
    fn wild_tensor_shapes_and_dtypes_never_panic(
        name in prop::sample::select(FIXTURE_TENSORS.to_vec()),
        (dtype, shape) in wild_tensor(),
        fill in any::<u8>(),
    ) {
        // A container the safetensors crate accepts, with one tensor of the real
        // export replaced: the loader's own checks must catch whatever is wrong.
        let elements: usize = shape.iter().product();
        let data = vec![fill; elements * dtype.bitsize() / 8];
        let bytes = Craft::small().raw(name, dtype, &shape, data).bytes();
        match SnnModel::from_bytes(&bytes) {
            Ok(model) => check_accepted(&model, &bytes)?,
            Err(err) => {
                prop_assert!(!matches!(err, Error::Container(_)), "the container is valid: {}", err);
                // It concerns the replaced tensor's layer: `fc1.weight` -> fc1.bias, "fc1 output width", ...
                let prefix = name.split('.').next().unwrap();
                let subject = common::subject(&err).unwrap_or_default();
                prop_assert!(subject.starts_with(prefix), "error `{}` should concern `{}`", err, name);
            }
        }
    }
}
