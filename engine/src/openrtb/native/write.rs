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

/// A fixed piece of the document, as it is and as JSON string text (its
/// `"` and `\` escaped once more), so that the markup output copies it
/// instead of escaping it ([`MarkupOut::push_text`]).
#[derive(Clone, Copy, Debug)]
struct Piece {
    plain: &'static str,
    json: &'static str,
}

/// `Piece { plain, json }`, the JSON form written out by hand; a test
/// checks every one against an escaper.
macro_rules! pieces {
    ($($name:ident = $plain:literal, $json:literal;)*) => {
        $(const $name: Piece = Piece { plain: $plain, json: $json };)*
        /// Every fixed piece, for the test.
        #[cfg(test)]
        pub(super) const PIECES: &[(&str, &str)] = &[$(($plain, $json)),*];
    };
}

pieces! {
    OPEN = r#"{"assets":["#, r#"{\"assets\":["#;
    COMMA = ",", ",";
    ID_FIRST = r#"{"id":"#, r#"{\"id\":"#;
    TITLE = r#","title":{"text":"#, r#",\"title\":{\"text\":"#;
    CLOSE_TWO = "}}", "}}";
    IMG = r#","img":{"#, r#",\"img\":{"#;
    IMG_H = r#""h":"#, r#"\"h\":"#;
    IMG_URL_AFTER_H = r#","url":"#, r#",\"url\":"#;
    IMG_W = r#","w":"#, r#",\"w\":"#;
    IMG_URL = r#""url":"#, r#"\"url\":"#;
    DATA = r#"{"data":{"value":"#, r#"{\"data\":{\"value\":"#;
    DATA_ID = r#"},"id":"#, r#"},\"id\":"#;
    CLOSE = "}", "}";
    CLOSE_ASSETS = "]", "]";
    EVENT_TRACKERS = r#","eventtrackers":[{"event":1,"method":1,"url":"#,
        r#",\"eventtrackers\":[{\"event\":1,\"method\":1,\"url\":"#;
    CLOSE_EVENT_TRACKERS = "}]", "}]";
    IMP_TRACKERS = r#","imptrackers":["#, r#",\"imptrackers\":["#;
    LINK = r#","link":{"url":"#, r#",\"link\":{\"url\":"#;
    TAIL = r#"},"ver":"1.2"}"#, r#"},\"ver\":\"1.2\"}"#;
    QUOTE = "\"", "\\\"";
    ESCAPED_QUOTE = "\\\"", "\\\\\\\"";
    ESCAPED_BACKSLASH = "\\\\", "\\\\\\\\";
}

impl<O: MarkupOut> Out<'_, O> {
    fn piece(&mut self, piece: Piece) {
        self.out.push_text(piece.plain, piece.json);
    }

    /// Starts the document and its assets array.
    pub(super) fn open(&mut self) {
        self.piece(OPEN);
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
                    self.piece(COMMA);
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
                self.piece(ID_FIRST);
                self.number(id);
                self.piece(TITLE);
                self.string(text);
                self.piece(CLOSE_TWO);
            }
            Answer::Img { url, size } => {
                self.piece(ID_FIRST);
                self.number(id);
                self.piece(IMG);
                if let Some((w, h)) = size {
                    self.piece(IMG_H);
                    self.number(h);
                    self.piece(IMG_URL_AFTER_H);
                    self.string(url);
                    self.piece(IMG_W);
                    self.number(w);
                } else {
                    self.piece(IMG_URL);
                    self.string(url);
                }
                self.piece(CLOSE_TWO);
            }
            Answer::Data(text) => {
                self.piece(DATA);
                self.string(text);
                self.piece(DATA_ID);
                self.number(id);
                self.piece(CLOSE);
            }
        }
    }

    /// Closes the assets array and writes the rest of the document: the
    /// impression tracker (as an event tracker when the request lists
    /// `eventtrackers`, a Native 1.2 request), the link and the version.
    pub(super) fn tail(&mut self, eventtrackers: bool) {
        self.piece(CLOSE_ASSETS);
        if let Some(url) = &self.spec.impression_url {
            if eventtrackers {
                self.piece(EVENT_TRACKERS);
                self.string(url);
                self.piece(CLOSE_EVENT_TRACKERS);
            } else {
                self.piece(IMP_TRACKERS);
                self.string(url);
                self.piece(CLOSE_ASSETS);
            }
        }
        self.piece(LINK);
        self.string(&self.spec.click_url);
        self.piece(TAIL);
    }

    /// Digits are the same in JSON string text.
    fn number(&mut self, n: u64) {
        let mut digits = itoa::Buffer::new();
        let digits = digits.format(n);
        self.out.push_text(digits, digits);
    }

    /// `text` as a JSON string, escaped as serde_json escapes: `"`, `\`
    /// and the control characters, nothing else. The runs between those
    /// need no escape in JSON string text either, so they are copied as
    /// they are both ways.
    fn string(&mut self, text: &str) {
        self.piece(QUOTE);
        let mut run_start = 0;
        for (at, byte) in text.bytes().enumerate() {
            let escaped = match byte {
                b'"' => ESCAPED_QUOTE,
                b'\\' => ESCAPED_BACKSLASH,
                0..=0x1f => CONTROL_ESCAPES[usize::from(byte)],
                _ => continue,
            };
            // The escaped bytes are ASCII, so runs split on characters.
            let run = &text[run_start..at];
            self.out.push_text(run, run);
            self.piece(escaped);
            run_start = at + 1;
        }
        let run = &text[run_start..];
        self.out.push_text(run, run);
        self.piece(QUOTE);
    }
}

/// serde_json's escapes of the control characters `0x00..=0x1f`, each
/// with its JSON form (one more `\`).
const CONTROL_ESCAPES: [Piece; 32] = {
    // Built at compile time from the two tables below.
    let mut table = [QUOTE; 32];
    let mut i = 0;
    while i < 32 {
        table[i] = Piece {
            plain: CONTROL_PLAIN[i],
            json: CONTROL_JSON[i],
        };
        i += 1;
    }
    table
};

/// The control characters' escapes with their JSON forms, for the test.
#[cfg(test)]
pub(super) fn control_pieces() -> impl Iterator<Item = (&'static str, &'static str)> {
    CONTROL_ESCAPES.iter().map(|p| (p.plain, p.json))
}

/// The control characters' escapes, as serde_json writes them.
const CONTROL_PLAIN: [&str; 32] = [
    "\\u0000", "\\u0001", "\\u0002", "\\u0003", "\\u0004", "\\u0005", "\\u0006", "\\u0007", "\\b",
    "\\t", "\\n", "\\u000b", "\\f", "\\r", "\\u000e", "\\u000f", "\\u0010", "\\u0011", "\\u0012",
    "\\u0013", "\\u0014", "\\u0015", "\\u0016", "\\u0017", "\\u0018", "\\u0019", "\\u001a",
    "\\u001b", "\\u001c", "\\u001d", "\\u001e", "\\u001f",
];

/// [`CONTROL_PLAIN`] as JSON string text.
const CONTROL_JSON: [&str; 32] = [
    "\\\\u0000",
    "\\\\u0001",
    "\\\\u0002",
    "\\\\u0003",
    "\\\\u0004",
    "\\\\u0005",
    "\\\\u0006",
    "\\\\u0007",
    "\\\\b",
    "\\\\t",
    "\\\\n",
    "\\\\u000b",
    "\\\\f",
    "\\\\r",
    "\\\\u000e",
    "\\\\u000f",
    "\\\\u0010",
    "\\\\u0011",
    "\\\\u0012",
    "\\\\u0013",
    "\\\\u0014",
    "\\\\u0015",
    "\\\\u0016",
    "\\\\u0017",
    "\\\\u0018",
    "\\\\u0019",
    "\\\\u001a",
    "\\\\u001b",
    "\\\\u001c",
    "\\\\u001d",
    "\\\\u001e",
    "\\\\u001f",
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
