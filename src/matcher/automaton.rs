//! The phrase automaton: Aho–Corasick over folded characters, stored as a
//! double array, with an alphabet of its own.
//!
//! Why not daachorse (which this replaced): its charwise automaton maps each
//! character to its internal code through a table of its own, so the scan
//! paid two dependent random loads per character before touching a state
//! (complyd's fold table, then daachorse's), plus a third for the state's
//! base. Here the codes are small integers the matcher stores straight in
//! its fold table, and each unit holds the base of the state it leads to, so
//! a step is one fold-table load and one unit load; failure links carry their
//! target's base too. See BENCHMARKS.md, "Where complyd's time goes".
//!
//! Layout: state `s` with base `b` goes to state `b + code` on `code` when
//! `units[b + code].check == s`. The root is state 0 with base 0, so its
//! children sit at their codes and stay in cache. Every overlapping match is
//! reported: a state's outputs are its own phrase followed by those of its
//! longest proper suffix that is a phrase (a linked list shared between
//! states).
//!
//! The scan steps small automata without branching on the character's kind
//! ([`Automaton::next`]) and large ones with predicted branches
//! ([`Automaton::next_predicted`]); [`Automaton::selects`] says why.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::hint::select_unpredictable;

/// The code of a character in no phrase; see [`Automaton::next`].
pub(crate) const RESET: u32 = 0;

/// Set in a unit's `base` when the state it leads to has outputs.
const OUT: u32 = 1 << 31;
/// Set in a unit's `base` when the failure link of the state it leads to
/// goes to the root (the root included).
const FAIL_ROOT: u32 = 1 << 30;
/// The base itself.
const BASE: u32 = FAIL_ROOT - 1;
/// Up to this size of units, steps select instead of branching; see
/// [`Automaton::selects`].
const SELECT_MAX_BYTES: usize = 512 << 10;
/// `check` of a free unit, and the end of an output list.
const NONE: u32 = u32::MAX;

#[derive(Debug, Clone, Copy)]
struct Unit {
    /// Base of the state this unit is, with `OUT` if it has outputs.
    base: u32,
    /// The parent state, or `NONE` if the unit is free.
    check: u32,
}

/// A position in the automaton: the state and its base (with `OUT`), kept
/// together so that a step needs no load for the current state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct State {
    index: u32,
    base: u32,
}

impl State {
    pub(crate) const ROOT: State = State {
        index: 0,
        base: FAIL_ROOT,
    };

    /// Whether some phrase ends here.
    #[inline(always)]
    pub(crate) fn has_output(self) -> bool {
        self.base & OUT != 0
    }
}

#[derive(Debug, Clone, Copy)]
struct Out {
    value: u32,
    /// Length of the phrase in characters.
    len: u32,
    next: u32,
}

#[derive(Debug)]
pub(crate) struct Automaton {
    /// Which step the scan uses; see [`Automaton::selects`].
    select: bool,
    units: Box<[Unit]>,
    /// Per state, where its failure link leads (with that state's base).
    fail: Box<[State]>,
    /// Per state with `OUT`: first entry of its output list in `outs`.
    out_head: Box<[u32]>,
    outs: Box<[Out]>,
    codes: HashMap<char, u32>,
}

#[derive(Default)]
struct TrieNode {
    /// (code, node), in increasing code order.
    children: Vec<(u32, u32)>,
    /// (value, length in characters) of the phrase ending here.
    phrase: Option<(u32, u32)>,
}

impl Automaton {
    /// Builds the automaton of non-empty, distinct phrases with their values;
    /// `select` forces the kind of step (tests), else it goes by size.
    pub(crate) fn build<'a>(
        patterns: impl IntoIterator<Item = (&'a str, u32)>,
        select: Option<bool>,
    ) -> Automaton {
        let patterns: Vec<(&str, u32)> = patterns.into_iter().collect();
        let codes = alphabet(&patterns);
        let trie = trie(&patterns, &codes);
        let max_code = codes.values().copied().max().unwrap_or(0);

        // Place the trie breadth-first: a node's children get the first base
        // at which all their units are free.
        let mut da = DoubleArray::new(max_code as usize + 1);
        let mut slot = vec![0u32; trie.len()];
        // (slot, parent slot, code) in breadth-first order, for the links.
        let mut order: Vec<(u32, u32, u32)> = Vec::with_capacity(trie.len());
        let mut queue = VecDeque::from([0usize]);
        while let Some(n) = queue.pop_front() {
            let children = &trie[n].children;
            if children.is_empty() {
                continue;
            }
            let base = if n == 0 { 0 } else { da.find_base(children) };
            let parent = slot[n];
            da.base[parent as usize] = base;
            for &(code, child) in children {
                let s = base + code;
                da.occupy(s, parent);
                slot[child as usize] = s;
                order.push((s, parent, code));
                queue.push_back(child as usize);
            }
        }
        // Every base + code stays inside the array: a step indexes it
        // without a fallback, whatever the state and code.
        let max_base = da.base.iter().copied().max().unwrap_or(0);
        da.grow_to((max_base + max_code + 1) as usize);
        assert!(da.check.len() < BASE as usize, "phrase automaton too large");

        let len = da.check.len();
        let mut fail = vec![State::ROOT; len];
        let mut out_head = vec![NONE; len];
        let mut outs = Vec::new();
        let phrase_at: HashMap<u32, (u32, u32)> = trie
            .iter()
            .zip(&slot)
            .filter_map(|(t, &s)| t.phrase.map(|p| (s, p)))
            .collect();
        let step = |s: u32, code: u32| {
            let t = da.base[s as usize] + code;
            (da.check.get(t as usize) == Some(&s)).then_some(t)
        };
        for &(s, parent, code) in &order {
            let f = if parent == 0 {
                0
            } else {
                let mut f = fail[parent as usize].index;
                loop {
                    if let Some(t) = step(f, code) {
                        break t;
                    }
                    if f == 0 {
                        break 0;
                    }
                    f = fail[f as usize].index;
                }
            };
            fail[s as usize].index = f;
            out_head[s as usize] = match phrase_at.get(&s) {
                Some(&(value, len)) => {
                    outs.push(Out {
                        value,
                        len,
                        next: out_head[f as usize],
                    });
                    outs.len() as u32 - 1
                }
                None => out_head[f as usize],
            };
        }
        let flags = |i: usize| {
            (if out_head[i] == NONE { 0 } else { OUT })
                | (if fail[i].index == 0 { FAIL_ROOT } else { 0 })
        };
        let units: Box<[Unit]> = (0..len)
            .map(|i| Unit {
                base: da.base[i] | flags(i),
                check: da.check[i],
            })
            .collect();
        debug_assert_eq!(units[0].base, State::ROOT.base);
        for f in &mut fail {
            f.base = units[f.index as usize].base;
        }
        Automaton {
            select: select.unwrap_or(size_of_val(&*units) <= SELECT_MAX_BYTES),
            units,
            fail: fail.into_boxed_slice(),
            out_head: out_head.into_boxed_slice(),
            outs: outs.into_boxed_slice(),
            codes,
        }
    }

    /// The code of a folded character, if some phrase contains it: `1..=n`
    /// for an alphabet of `n` characters, most frequent first. Codes are
    /// never [`RESET`], 0xFFFE or 0xFFFF (markers in the matcher's fold
    /// table).
    pub(crate) fn code(&self, c: char) -> Option<u32> {
        self.codes.get(&c).copied()
    }

    /// Whether [`Automaton::next`] pays: measured on jieba dictionaries
    /// (whole scan, A/B of two builds), it is 1.8x faster than
    /// [`Automaton::next_predicted`] at 1k phrases (units: 32 KB) and 1.4x
    /// at 10k (200 KB), but 0.93x at 100k (1.4 MB): once the units no
    /// longer sit in L2, every step waits for its load, which a predicted
    /// branch would have run ahead of.
    pub(crate) fn selects(&self) -> bool {
        self.select
    }

    /// Follows `code` from `state`, through failure links as needed. The
    /// code is one from [`Automaton::code`], or [`RESET`] (a character in no
    /// phrase: back to the root).
    ///
    /// Whether a character continues a phrase, begins one, or neither is a
    /// coin flip the branch predictor loses (about one miss per character
    /// with daachorse). So the state's own transition and the root's are
    /// looked up together and the result selected without a branch; the
    /// root's lookup depends only on the character, so it is off the
    /// critical path. Only a state whose failure link leads elsewhere than
    /// the root, missing its own transition, walks the links, out of line.
    #[inline(always)]
    pub(crate) fn next(&self, state: State, code: u32) -> State {
        // Code 0 leads from the root to the root itself and from other
        // states nowhere, so RESET needs no select of its own on the chain
        // from one state to the next: it always ends up at the root.
        let s = state;
        let t = (s.base & BASE) + code;
        let own = self.units[t as usize];
        let root = self.units[code as usize];
        let has_own = own.check == s.index;
        if !has_own && code != RESET && s.base & FAIL_ROOT == 0 {
            return self.walk(s.index, code);
        }
        let from_root = select_unpredictable(
            root.check == 0,
            State {
                index: code,
                base: root.base,
            },
            State::ROOT,
        );
        select_unpredictable(
            has_own,
            State {
                index: t,
                base: own.base,
            },
            from_root,
        )
    }

    /// [`Automaton::next`] with branches, for large automata (see
    /// [`Automaton::selects`]); `code` is not RESET.
    #[inline(always)]
    pub(crate) fn next_predicted(&self, state: State, code: u32) -> State {
        let t = (state.base & BASE) + code;
        let u = self.units[t as usize];
        if u.check == state.index {
            return State {
                index: t,
                base: u.base,
            };
        }
        if state.index == 0 {
            return State::ROOT;
        }
        self.walk(state.index, code)
    }

    /// `next` from the failure target of `s`, whose own transition is missing.
    fn walk(&self, mut s: u32, code: u32) -> State {
        loop {
            let f = self.fail[s as usize];
            let t = (f.base & BASE) + code;
            if let Some(u) = self.units.get(t as usize)
                && u.check == f.index
            {
                return State {
                    index: t,
                    base: u.base,
                };
            }
            if f.index == 0 {
                return State::ROOT;
            }
            s = f.index;
        }
    }

    /// Calls `f(value, length in characters)` for every phrase ending at
    /// `state`, longest first.
    #[inline]
    pub(crate) fn for_each_output(&self, state: State, mut f: impl FnMut(u32, u32)) {
        if !state.has_output() {
            return;
        }
        let mut i = self.out_head[state.index as usize];
        while i != NONE {
            let o = self.outs[i as usize];
            f(o.value, o.len);
            i = o.next;
        }
    }

    /// Heap size in bytes (the alphabet map counted at its capacity).
    pub(crate) fn heap_bytes(&self) -> usize {
        size_of_val(&*self.units)
            + size_of_val(&*self.fail)
            + size_of_val(&*self.out_head)
            + size_of_val(&*self.outs)
            + self.codes.capacity() * (size_of::<(char, u32)>() + 1)
    }
}

/// Codes by decreasing frequency in the phrases: the characters most states
/// are reached by get the smallest codes, which packs the array densest.
fn alphabet(patterns: &[(&str, u32)]) -> HashMap<char, u32> {
    let mut freq: HashMap<char, u64> = HashMap::new();
    for (p, _) in patterns {
        for c in p.chars() {
            *freq.entry(c).or_default() += 1;
        }
    }
    let mut chars: Vec<(char, u64)> = freq.into_iter().collect();
    chars.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let code = |i: usize| match i as u32 + 1 {
        k if k < 0xFFFE => k,
        k => k + 2,
    };
    chars
        .iter()
        .enumerate()
        .map(|(i, &(c, _))| (c, code(i)))
        .collect()
}

fn trie(patterns: &[(&str, u32)], codes: &HashMap<char, u32>) -> Vec<TrieNode> {
    let mut seqs: Vec<(Vec<u32>, u32)> = patterns
        .iter()
        .map(|&(p, v)| (p.chars().map(|c| codes[&c]).collect(), v))
        .collect();
    // Sorted, a node's children arrive in code order and a shared prefix
    // always continues through the last child added.
    seqs.sort_unstable();
    let mut trie = vec![TrieNode::default()];
    for (seq, value) in &seqs {
        let mut n = 0usize;
        for &code in seq {
            n = match trie[n].children.last() {
                Some(&(c, child)) if c == code => child as usize,
                _ => {
                    let child = trie.len();
                    trie.push(TrieNode::default());
                    trie[n].children.push((code, child as u32));
                    child
                }
            };
        }
        assert!(trie[n].phrase.is_none(), "duplicate phrase");
        trie[n].phrase = Some((*value, seq.len() as u32));
    }
    trie
}

/// The array under construction.
struct DoubleArray {
    base: Vec<u32>,
    check: Vec<u32>,
    /// Every free unit.
    free: BTreeSet<u32>,
    /// How far back from the end nodes with several children look for a
    /// place. Searching the whole array would retry the holes of its dense
    /// start for every node: the build would take minutes at 100k phrases;
    /// daachorse's builder uses the same bound (16 blocks of the alphabet's
    /// size). Single children fill those holes instead.
    window: u32,
}

impl DoubleArray {
    fn new(alphabet: usize) -> DoubleArray {
        let mut da = DoubleArray {
            base: Vec::new(),
            check: Vec::new(),
            free: BTreeSet::new(),
            window: 16 * alphabet.next_power_of_two() as u32,
        };
        da.grow_to(alphabet.max(1));
        // The root.
        da.occupy(0, 0);
        da
    }

    fn grow_to(&mut self, len: usize) {
        for i in self.check.len()..len {
            self.free.insert(i as u32);
        }
        let len = len.max(self.check.len());
        self.base.resize(len, 0);
        self.check.resize(len, NONE);
    }

    fn occupy(&mut self, slot: u32, parent: u32) {
        if slot as usize >= self.check.len() {
            self.grow_to(slot as usize + 1);
        }
        self.check[slot as usize] = parent;
        self.free.remove(&slot);
    }

    fn is_free(&self, slot: u32) -> bool {
        self.check.get(slot as usize).is_none_or(|&c| c == NONE)
    }

    /// The first base at which every child's unit is free.
    fn find_base(&self, children: &[(u32, u32)]) -> u32 {
        let first = children[0].0;
        let end = self.check.len() as u32;
        let from = if children.len() == 1 {
            first
        } else {
            first.max(end.saturating_sub(self.window))
        };
        self.free
            .range(from..)
            .map(|&f| f - first)
            .find(|&b| children[1..].iter().all(|&(c, _)| self.is_free(b + c)))
            // Else past the end: the first child at the first new unit.
            .unwrap_or(end.max(first) - first)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use proptest::prelude::*;

    /// Every (end in characters, value, length) the automaton reports for
    /// `text`, by both kinds of step, which must agree; characters in no
    /// phrase restart the automaton.
    fn run(ac: &Automaton, text: &str) -> Vec<(usize, u32, u32)> {
        let mut out = [Vec::new(), Vec::new()];
        for (select, out) in [true, false].into_iter().zip(&mut out) {
            let mut state = State::ROOT;
            for (i, c) in text.chars().enumerate() {
                let code = ac.code(c).unwrap_or(RESET);
                state = if select {
                    ac.next(state, code)
                } else if code == RESET {
                    State::ROOT
                } else {
                    ac.next_predicted(state, code)
                };
                ac.for_each_output(state, |v, len| out.push((i + 1, v, len)));
            }
            out.sort_unstable();
        }
        assert_eq!(out[0], out[1], "select vs predicted on {text:?}");
        out[0].clone()
    }

    /// The reference: every phrase at every end position, by comparison.
    fn naive(patterns: &[(String, u32)], text: &str) -> Vec<(usize, u32, u32)> {
        let chars: Vec<char> = text.chars().collect();
        let mut out = Vec::new();
        for end in 1..=chars.len() {
            for (p, v) in patterns {
                let p: Vec<char> = p.chars().collect();
                if p.len() <= end && chars[end - p.len()..end] == p[..] {
                    out.push((end, *v, p.len() as u32));
                }
            }
        }
        out.sort_unstable();
        out
    }

    fn automaton(patterns: &[(String, u32)]) -> Automaton {
        Automaton::build(patterns.iter().map(|(p, v)| (p.as_str(), *v)), None)
    }

    #[test]
    fn reports_every_overlapping_phrase() {
        let patterns: Vec<(String, u32)> = ["我的", "我的世界", "世界", "的世"]
            .iter()
            .enumerate()
            .map(|(i, p)| (p.to_string(), i as u32))
            .collect();
        let ac = automaton(&patterns);
        for text in ["我的世界", "我我的世世界界", "的世界我的", "", "我的x世界"]
        {
            assert_eq!(run(&ac, text), naive(&patterns, text), "{text}");
        }
        assert_eq!(run(&ac, "我的世界").len(), 4);
    }

    /// A large alphabet with wide nodes: placement past the end of the
    /// array and the search window are exercised.
    #[test]
    fn large_dictionary_matches_reference() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = move |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        // Skewed towards a few hundred characters, like real phrases.
        let pick = |next: &mut dyn FnMut(u64) -> u64| {
            let range = if next(4) == 0 { 4000 } else { 300 };
            char::from_u32(0x4E00 + next(range) as u32).unwrap()
        };
        let mut seen = HashSet::new();
        let mut patterns = Vec::new();
        while patterns.len() < 3000 {
            let len = 1 + next(4) as usize;
            let p: String = (0..len).map(|_| pick(&mut next)).collect();
            if seen.insert(p.clone()) {
                patterns.push((p, patterns.len() as u32));
            }
        }
        let ac = automaton(&patterns);
        let text: String = (0..3000).map(|_| pick(&mut next)).collect();
        let found = run(&ac, &text);
        assert!(found.len() > 1000, "{}", found.len());
        assert_eq!(found, naive(&patterns, &text));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn matches_naive_search(
            phrases in prop::collection::hash_set("[abcd]{1,5}", 1..12),
            text in "[abcde]{0,60}",
        ) {
            let patterns: Vec<(String, u32)> =
                phrases.into_iter().enumerate().map(|(i, p)| (p, i as u32)).collect();
            prop_assert_eq!(run(&automaton(&patterns), &text), naive(&patterns, &text));
        }
    }
}
