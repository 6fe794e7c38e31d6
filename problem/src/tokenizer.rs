//! Text ↔ token ids for the models.
//!
//! One token per character of the domain's alphabet, after a block of special tokens. The layout is
//! fixed so that checkpoints stay readable across versions:
//!
//! | ids | tokens |
//! |---|---|
//! | 0 | `<pad>` |
//! | 1 | `<bos>` begin of sequence |
//! | 2 | `<eos>` end of sequence |
//! | 3 | `<sep>` separator (between problem and answer, between reference problems) |
//! | 4 .. 4+L | `<d0>` .. `<dL-1>` difficulty targets |
//! | 4+L .. 4+L+A | the alphabet, in the domain's order |
//! | 4+L+A .. | `<l0>` .. `<lM-1>` literal-bound targets, when the tokenizer has them |
//!
//! Literal-bound tokens come last, so that a tokenizer without them (every checkpoint written
//! before they existed) has the same ids for everything else.

use std::fmt::Write as _;

/// The special tokens every tokenizer has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Special {
    Pad,
    Bos,
    Eos,
    Sep,
}

impl Special {
    const ALL: [Special; 4] = [Special::Pad, Special::Bos, Special::Eos, Special::Sep];

    fn id(self) -> u32 {
        self as u32
    }

    fn name(self) -> &'static str {
        match self {
            Special::Pad => "<pad>",
            Special::Bos => "<bos>",
            Special::Eos => "<eos>",
            Special::Sep => "<sep>",
        }
    }
}

/// Text that cannot be tokenized, or ids that are not text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenizeError {
    #[error("character {ch:?} at byte {at} is not in the alphabet")]
    UnknownChar { ch: char, at: usize },
    #[error("token id {id} at position {pos} is out of the vocabulary (size {vocab})")]
    UnknownId { id: u32, pos: usize, vocab: u32 },
    #[error("token {name} at position {pos} is a special token, not text")]
    SpecialInText { name: String, pos: usize },
}

/// Maps text to token ids and back. Cheap to clone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tokenizer {
    chars: Vec<char>,
    difficulty_levels: u32,
    literal_levels: u32,
    /// Byte → id for ASCII characters, `u32::MAX` where absent.
    ascii: [u32; 128],
}

impl Tokenizer {
    /// A tokenizer over `alphabet` (characters must be distinct) with `difficulty_levels`
    /// difficulty-target tokens.
    pub fn new(alphabet: &[char], difficulty_levels: u32) -> Self {
        let mut ascii = [u32::MAX; 128];
        let first = Special::ALL.len() as u32 + difficulty_levels;
        for (i, &c) in alphabet.iter().enumerate() {
            assert!(!alphabet[..i].contains(&c), "alphabet repeats {c:?}");
            if c.is_ascii() {
                ascii[c as usize] = first + i as u32;
            }
        }
        Tokenizer { chars: alphabet.to_vec(), difficulty_levels, literal_levels: 0, ascii }
    }

    /// The same tokenizer with `levels` literal-bound tokens after the alphabet.
    pub fn with_literal_levels(mut self, levels: u32) -> Self {
        self.literal_levels = levels;
        self
    }

    /// Number of distinct token ids.
    pub fn vocab_size(&self) -> u32 {
        self.first_literal_id() + self.literal_levels
    }

    /// Number of literal-bound tokens.
    pub fn literal_levels(&self) -> u32 {
        self.literal_levels
    }

    /// The id of literal-bound target `level` (`0..literal_levels`), or `None` past the last.
    pub fn literal(&self, level: u32) -> Option<u32> {
        (level < self.literal_levels).then(|| self.first_literal_id() + level)
    }

    /// The literal-bound level a token id stands for, if it is one.
    pub fn literal_of(&self, id: u32) -> Option<u32> {
        let first = self.first_literal_id();
        (first..first + self.literal_levels).contains(&id).then(|| id - first)
    }

    fn first_literal_id(&self) -> u32 {
        self.first_char_id() + self.chars.len() as u32
    }

    /// The id of a special token.
    pub fn special(&self, s: Special) -> u32 {
        s.id()
    }

    /// Number of difficulty-target tokens.
    pub fn difficulty_levels(&self) -> u32 {
        self.difficulty_levels
    }

    /// The id of difficulty target `level` (`0..difficulty_levels`), or `None` past the last.
    pub fn difficulty(&self, level: u32) -> Option<u32> {
        (level < self.difficulty_levels).then(|| Special::ALL.len() as u32 + level)
    }

    /// The difficulty level a token id stands for, if it is one.
    pub fn difficulty_of(&self, id: u32) -> Option<u32> {
        let first = Special::ALL.len() as u32;
        (first..first + self.difficulty_levels).contains(&id).then(|| id - first)
    }

    fn first_char_id(&self) -> u32 {
        Special::ALL.len() as u32 + self.difficulty_levels
    }

    /// Text to ids, one per character. Fails on the first character outside the alphabet.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, TokenizeError> {
        let mut ids = Vec::with_capacity(text.len());
        for (at, ch) in text.char_indices() {
            let id = if ch.is_ascii() {
                self.ascii[ch as usize]
            } else {
                self.chars.iter().position(|&c| c == ch).map_or(u32::MAX, |i| self.first_char_id() + i as u32)
            };
            if id == u32::MAX {
                return Err(TokenizeError::UnknownChar { ch, at });
            }
            ids.push(id);
        }
        Ok(ids)
    }

    /// Ids to text. Every id must be a character token: specials are not text.
    pub fn decode(&self, ids: &[u32]) -> Result<String, TokenizeError> {
        let mut text = String::with_capacity(ids.len());
        for (pos, &id) in ids.iter().enumerate() {
            match self.char_of(id) {
                Some(c) => text.push(c),
                None if id < self.vocab_size() => {
                    return Err(TokenizeError::SpecialInText { name: self.token_name(id), pos })
                }
                None => return Err(TokenizeError::UnknownId { id, pos, vocab: self.vocab_size() }),
            }
        }
        Ok(text)
    }

    /// The character a token id stands for, if it is a character token.
    pub fn char_of(&self, id: u32) -> Option<char> {
        id.checked_sub(self.first_char_id()).and_then(|i| self.chars.get(i as usize)).copied()
    }

    /// The ids before the first `stop` token, and whether there was one.
    pub fn until<'a>(&self, ids: &'a [u32], stop: Special) -> (&'a [u32], bool) {
        match ids.iter().position(|&t| t == stop.id()) {
            Some(end) => (&ids[..end], true),
            None => (ids, false),
        }
    }

    /// Any ids as readable text, specials as `<bos>`, `<d3>` and unknown ids as `<?17>`: for logs.
    pub fn render(&self, ids: &[u32]) -> String {
        let mut out = String::new();
        for &id in ids {
            match self.char_of(id) {
                Some(c) => out.push(c),
                None => out.push_str(&self.token_name(id)),
            }
        }
        out
    }

    fn token_name(&self, id: u32) -> String {
        if let Some(s) = Special::ALL.iter().find(|s| s.id() == id) {
            return s.name().to_string();
        }
        let mut name = String::new();
        match (self.difficulty_of(id), self.literal_of(id)) {
            (Some(level), _) => write!(name, "<d{level}>"),
            (None, Some(level)) => write!(name, "<l{level}>"),
            (None, None) => write!(name, "<?{id}>"),
        }
        .expect("writing to a String cannot fail");
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Arith, Domain};
    use proptest::prelude::*;

    fn tok() -> Tokenizer {
        Arith.tokenizer(8)
    }

    #[test]
    fn layout_is_fixed() {
        let t = tok();
        assert_eq!(t.special(Special::Pad), 0);
        assert_eq!(t.special(Special::Bos), 1);
        assert_eq!(t.special(Special::Eos), 2);
        assert_eq!(t.special(Special::Sep), 3);
        assert_eq!(t.difficulty(0), Some(4));
        assert_eq!(t.difficulty(7), Some(11));
        assert_eq!(t.difficulty(8), None);
        assert_eq!(t.difficulty_of(11), Some(7));
        assert_eq!(t.difficulty_of(12), None);
        assert_eq!(t.encode("0").unwrap(), vec![12]);
        assert_eq!(t.vocab_size(), 12 + Arith.alphabet().len() as u32);
        assert!(t.vocab_size() <= 32, "the arithmetic vocabulary fits in 32 ids");
        assert_eq!((t.literal_levels(), t.literal(0)), (0, None));
    }

    #[test]
    fn literal_bound_tokens_come_after_the_alphabet() {
        let plain = tok();
        let t = tok().with_literal_levels(2);
        let first = plain.vocab_size();
        assert_eq!(t.vocab_size(), first + 2);
        assert_eq!((t.literal(0), t.literal(1), t.literal(2)), (Some(first), Some(first + 1), None));
        assert_eq!((t.literal_of(first + 1), t.literal_of(first - 1)), (Some(1), None));
        // Every other id is the plain tokenizer's.
        assert_eq!(t.encode("(1+2)*3=9").unwrap(), plain.encode("(1+2)*3=9").unwrap());
        assert_eq!(t.difficulty(3), plain.difficulty(3));
        assert_eq!(
            t.render(&[1, 5, first, first + 1, first + 2]),
            format!("<bos><d1><l0><l1><?{}>", first + 2)
        );
        assert!(matches!(t.decode(&[first]), Err(TokenizeError::SpecialInText { pos: 0, .. })));
    }

    #[test]
    fn encode_reports_unknown_characters_with_their_byte() {
        let err = tok().encode("1+é2").unwrap_err();
        assert_eq!(err, TokenizeError::UnknownChar { ch: 'é', at: 2 });
        assert_eq!(err.to_string(), "character 'é' at byte 2 is not in the alphabet");
    }

    #[test]
    fn decode_rejects_specials_and_unknown_ids() {
        let t = tok();
        let bos = t.special(Special::Bos);
        assert!(matches!(t.decode(&[12, bos]), Err(TokenizeError::SpecialInText { pos: 1, .. })));
        assert!(matches!(t.decode(&[999]), Err(TokenizeError::UnknownId { id: 999, .. })));
        assert_eq!(t.render(&[bos, 5, 13, 999, 2]), "<bos><d1>1<?999><eos>");
        assert_eq!(t.until(&[13, 2, 14], Special::Eos), (&[13][..], true));
        assert_eq!(t.until(&[13, 14], Special::Eos), (&[13, 14][..], false));
    }

    proptest! {
        #[test]
        fn text_round_trips(text in "[0-9+*() =-]{0,64}") {
            let t = tok();
            let ids = t.encode(&text).unwrap();
            prop_assert_eq!(ids.len(), text.chars().count());
            prop_assert!(ids.iter().all(|&id| id < t.vocab_size()));
            prop_assert_eq!(t.decode(&ids).unwrap(), text);
        }

        #[test]
        fn arbitrary_text_never_panics(text in any::<String>()) {
            let _ = tok().encode(&text);
        }
    }
}
