//! Fuzzing the report renderers: any report file, however hostile (markup, control characters,
//! characters XML forbids, times from year 0 to 9999, numbers up to 1e308), renders in every
//! format without a panic, without more than 100 MB of memory, and without markup, escapes or
//! forbidden characters of its own. Memory is measured, not guessed: this test binary counts
//! every allocation and keeps the peak.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::{DateTime, SecondsFormat};
use proptest::prelude::*;
use serde_json::Value;

use disasterpiece::report::{html, render, store, trend};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
/// The most any one case used, for `--nocapture` (BENCHMARKS.md quotes it).
static WORST: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `alloc`'s contract; this only forwards to the system.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const LIMIT: usize = 100 << 20;

/// Keys whose values are enums or durations: a report with anything else there is refused by
/// `report` (which is tested elsewhere), so the fuzzer leaves them.
const FIXED: [&str; 12] = [
    "apiVersion",
    "outcome",
    "verdict",
    "status",
    "mode",
    "method",
    "duration",
    "within",
    "timeout",
    "probe",
    "reportVersion",
    "kind",
];
const TIMES: [&str; 7] = [
    "at",
    "startedAt",
    "endedAt",
    "injectedAt",
    "revertedAt",
    "firstHeld",
    "requestedAt",
];

struct Supply {
    texts: Vec<String>,
    times: Vec<i64>,
    numbers: Vec<f64>,
    n: usize,
}

impl Supply {
    fn next<T: Clone>(&mut self, from: &[T]) -> Option<T> {
        self.n += 1;
        (!from.is_empty()).then(|| from[self.n % from.len()].clone())
    }
}

/// Replaces every free string, time and number of the report by one from the supply.
fn mutate(value: &mut Value, key: &str, supply: &mut Supply) {
    match value {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                mutate(v, k, supply);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| mutate(v, key, supply)),
        Value::String(s) if TIMES.contains(&key) => {
            let texts = supply.times.clone();
            if let Some(t) = supply.next(&texts).and_then(|t| DateTime::from_timestamp(t, 0)) {
                *s = t.to_rfc3339_opts(SecondsFormat::Millis, true);
            }
        }
        Value::String(s) if !FIXED.contains(&key) => {
            let texts = supply.texts.clone();
            if let Some(t) = supply.next(&texts) {
                *s = t;
            }
        }
        Value::Number(_) if key.ends_with('S') || key == "latencyMs" || key == "availability" => {
            let numbers = supply.numbers.clone();
            if let Some(n) = supply.next(&numbers).and_then(serde_json::Number::from_f64) {
                *value = Value::Number(n);
            }
        }
        _ => {}
    }
}

fn hostile_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        Just("<script>alert(1)</script>".to_owned()),
        Just("[x](javascript:alert(1)) ![i](https://evil.example/p.png)".to_owned()),
        Just("a\nb\r\n# heading\n- item | cell".to_owned()),
        Just("\u{1b}[2J\u{1b}]0;title\u{7}\u{9b}31m\u{202E}".to_owned()),
        Just("\u{FFFE}\u{FFFF}\u{0}\u{1}\u{B}".to_owned()),
        Just("javascript:alert(1)".to_owned()),
    ]
}

fn times() -> impl Strategy<Value = i64> {
    // Year 0 to year 9999, the dates RFC 3339 can write.
    prop_oneof![
        Just(-62_167_219_200i64),
        Just(253_402_300_799i64),
        -62_167_219_200i64..253_402_300_799i64,
        1_790_000_000i64..1_790_000_100i64,
    ]
}

fn numbers() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(1e308),
        Just(-1e308),
        Just(f64::MIN_POSITIVE),
        Just(0.0),
        -1e6f64..1e6,
        any::<f64>().prop_filter("finite", |f| f.is_finite()),
    ]
}

fn base() -> Value {
    serde_json::from_str(include_str!("golden/report.json")).expect("the golden report is JSON")
}

/// Every `<` the Markdown holds is escaped (so none opens HTML), and no control character or
/// newline came from the report into a line.
fn markdown_is_inert(md: &str) {
    let mut previous = ' ';
    for c in md.chars() {
        assert!(c != '<' || previous == '\\', "raw `<` in Markdown:\n{md}");
        assert!(c == '\n' || !c.is_control(), "control {c:?} in Markdown");
        previous = c;
    }
}

fn xml_is_legal(text: &str) {
    for c in text.chars() {
        let legal = matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..);
        assert!(legal, "{:?} is not allowed in XML 1.0", c);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn any_report_renders_in_every_format_safely_and_in_bounded_memory(
        texts in prop::collection::vec(hostile_text(), 1..12),
        times in prop::collection::vec(times(), 1..8),
        numbers in prop::collection::vec(numbers(), 1..8),
    ) {
        let mut value = base();
        let mut supply = Supply { texts, times, numbers, n: 0 };
        mutate(&mut value, "", &mut supply);
        let text = value.to_string();
        let report = match store::parse(&text) {
            Ok(r) => r,
            Err(e) => panic!("the fuzzer made a report `report` refuses: {e}\n{text}"),
        };
        let baseline = LIVE.load(Ordering::Relaxed);
        PEAK.store(baseline, Ordering::Relaxed);

        let md = render::markdown(&report);
        let junit = render::junit(std::slice::from_ref(&report));
        let page = html::html(&report);
        let reports = vec![report];
        let t = trend::Trend {
            group_by: trend::GroupBy::Scenario,
            since: None,
            reports: 1,
            groups: trend::trend(&reports, trend::GroupBy::Scenario),
            skipped: Vec::new(),
        };
        let trend_md = trend::markdown(&t);
        let trend_html = trend::html(&t);

        let used = PEAK.load(Ordering::Relaxed).saturating_sub(baseline);
        if used > WORST.fetch_max(used, Ordering::Relaxed) {
            eprintln!("worst so far: {:.2} MB for one report in five formats", used as f64 / 1048576.0);
        }
        prop_assert!(used <= LIMIT, "rendering took {} MB", used >> 20);
        markdown_is_inert(&md);
        markdown_is_inert(&trend_md);
        xml_is_legal(&junit);
        xml_is_legal(&page);
        xml_is_legal(&trend_html);
        prop_assert!(!page.contains("<script"), "a script in the HTML");
    }
}
