//! The native response document, written piece by piece into the markup
//! output, in the order and with the escapes serde_json gave it (keys
//! sorted, as a `Value` object holds them).

use super::asset::{AssetRequest, Fields, Num};
use super::Assets;
use cx_domain::catalog::template::MarkupOut;
use cx_domain::catalog::CreativeSpec;

/// Where the answers go, and what they are made from.
pub(super) struct Out<'a, O> {
    pub(super) spec: &'a CreativeSpec,
    pub(super) out: &'a mut O,
}

/// What the creative answers to one asset.
enum Answer<'s> {
    Title(&'s str),
    Img {
        url: &'s str,
        size: Option<(u64, u64)>,
    },
    Data(&'s str),
}

impl<O: MarkupOut> Out<'_, O> {
    /// Starts the document and its assets array.
    pub(super) fn open(&mut self) {
        self.out.push_markup("{\"assets\":[");
    }

    /// Answers `asset` into the assets array, or marks the array failed
    /// (an asset without a numeric id, or a required one unanswered).
    pub(super) fn answer(&mut self, asset: &AssetRequest, assets: &mut Assets) {
        if assets.failed {
            return;
        }
        let Some(id) = asset.id.as_u64() else {
            assets.failed = true;
            return;
        };
        match Answer::of(asset, self.spec) {
            Some(answer) => {
                if assets.answered > 0 {
                    self.out.push_markup(",");
                }
                self.write_answer(id, &answer);
                assets.answered += 1;
            }
            None if asset.required.as_u64() == Some(1) => assets.failed = true,
            None => {}
        }
    }

    fn write_answer(&mut self, id: u64, answer: &Answer<'_>) {
        match *answer {
            Answer::Title(text) => {
                self.id_first(id);
                self.out.push_markup(",\"title\":{\"text\":");
                self.string(text);
                self.out.push_markup("}}");
            }
            Answer::Img { url, size } => {
                self.id_first(id);
                self.out.push_markup(",\"img\":{");
                if let Some((w, h)) = size {
                    self.out.push_markup("\"h\":");
                    self.number(h);
                    self.out.push_markup(",\"url\":");
                    self.string(url);
                    self.out.push_markup(",\"w\":");
                    self.number(w);
                } else {
                    self.out.push_markup("\"url\":");
                    self.string(url);
                }
                self.out.push_markup("}}");
            }
            Answer::Data(text) => {
                self.out.push_markup("{\"data\":{\"value\":");
                self.string(text);
                self.out.push_markup("},\"id\":");
                self.number(id);
                self.out.push_markup("}");
            }
        }
    }

    /// `{"id":N`
    fn id_first(&mut self, id: u64) {
        self.out.push_markup("{\"id\":");
        self.number(id);
    }

    /// Closes the assets array and writes the rest of the document: the
    /// impression tracker (as an event tracker when the request lists
    /// `eventtrackers`, a Native 1.2 request), the link and the version.
    pub(super) fn tail(&mut self, eventtrackers: bool) {
        self.out.push_markup("]");
        if let Some(url) = &self.spec.impression_url {
            if eventtrackers {
                self.out
                    .push_markup(",\"eventtrackers\":[{\"event\":1,\"method\":1,\"url\":");
                self.string(url);
                self.out.push_markup("}]");
            } else {
                self.out.push_markup(",\"imptrackers\":[");
                self.string(url);
                self.out.push_markup("]");
            }
        }
        self.out.push_markup(",\"link\":{\"url\":");
        self.string(&self.spec.click_url);
        self.out.push_markup("},\"ver\":\"1.2\"}");
    }

    fn number(&mut self, n: u64) {
        self.out.push_markup(itoa::Buffer::new().format(n));
    }

    /// `text` as a JSON string, escaped as serde_json escapes: `"`, `\`
    /// and the control characters, nothing else.
    fn string(&mut self, text: &str) {
        self.out.push_markup("\"");
        let mut run_start = 0;
        for (at, byte) in text.bytes().enumerate() {
            let escaped = match byte {
                b'"' => "\\\"",
                b'\\' => "\\\\",
                0..=0x1f => CONTROL_ESCAPES[usize::from(byte)],
                _ => continue,
            };
            // The escaped bytes are ASCII, so runs split on characters.
            self.out.push_markup(&text[run_start..at]);
            self.out.push_markup(escaped);
            run_start = at + 1;
        }
        self.out.push_markup(&text[run_start..]);
        self.out.push_markup("\"");
    }
}

/// serde_json's escapes of the control characters `0x00..=0x1f`.
const CONTROL_ESCAPES: [&str; 32] = [
    "\\u0000", "\\u0001", "\\u0002", "\\u0003", "\\u0004", "\\u0005", "\\u0006", "\\u0007", "\\b",
    "\\t", "\\n", "\\u000b", "\\f", "\\r", "\\u000e", "\\u000f", "\\u0010", "\\u0011", "\\u0012",
    "\\u0013", "\\u0014", "\\u0015", "\\u0016", "\\u0017", "\\u0018", "\\u0019", "\\u001a",
    "\\u001b", "\\u001c", "\\u001d", "\\u001e", "\\u001f",
];

impl<'s> Answer<'s> {
    /// The creative's answer to `asset`: a title asset gets the title, an
    /// image asset of type 1 the icon and any other the main image, a data
    /// asset of type 1 the sponsor, 2 the description, 12 the call to
    /// action (texts cut to the asset's `len`); `None` when the creative
    /// has nothing for it.
    fn of(asset: &AssetRequest, spec: &'s CreativeSpec) -> Option<Self> {
        if let Some(title) = asset.title {
            return Some(Self::Title(cut(spec.title.as_deref()?, title.len)));
        }
        if let Some(img) = asset.img {
            let url = if img.kind.as_u64() == Some(1) {
                &spec.icon_url
            } else {
                &spec.image_url
            };
            let size = side(img.w, img.wmin).zip(side(img.h, img.hmin));
            return Some(Self::Img {
                url: url.as_deref()?,
                size,
            });
        }
        let data: Fields = asset.data?;
        let text = match data.kind.as_u64()? {
            1 => spec.sponsor.as_deref()?,
            2 => spec.description.as_deref()?,
            12 => spec.cta.as_deref()?,
            _ => return None,
        };
        Some(Self::Data(cut(text, data.len)))
    }
}

/// An image side: the exact one when the key is there, else the minimum;
/// only a positive integer counts.
fn side(exact: Num, min: Num) -> Option<u64> {
    let given = if exact == Num::Absent { min } else { exact };
    given.as_u64().filter(|&n| n > 0)
}

/// `text` cut to at most `len` characters (when `len` is a positive
/// integer).
fn cut(text: &str, len: Num) -> &str {
    match len.as_u64().filter(|&n| n > 0) {
        Some(n) => {
            let n = usize::try_from(n).unwrap_or(usize::MAX);
            text.char_indices()
                .nth(n)
                .map_or(text, |(at, _)| &text[..at])
        }
        None => text,
    }
}
