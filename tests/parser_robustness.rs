//! Random edits of valid scenarios never panic the reader, and every problem it reports
//! points at a real place in the file.

use disasterpiece::scenario;
use proptest::prelude::*;

fn examples() -> Vec<String> {
    let mut texts = Vec::new();
    for dir in ["scenarios", "scenarios/invalid"] {
        for entry in std::fs::read_dir(dir).expect("list") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "yaml") {
                texts.push(std::fs::read_to_string(&path).expect("read"));
            }
        }
    }
    texts.sort();
    texts
}

#[derive(Debug, Clone)]
enum Edit {
    Delete { at: usize, len: usize },
    Insert { at: usize, text: String },
    DuplicateLine { line: usize },
    SwapLines { a: usize, b: usize },
    Indent { line: usize, by: usize },
}

fn edit() -> impl Strategy<Value = Edit> {
    let fragment = prop::sample::select(vec![
        ":",
        "- ",
        " ",
        "\n",
        "{",
        "}",
        "[",
        "]",
        "\"",
        "'",
        "&a ",
        "*a",
        "!!str ",
        "---\n",
        "#",
        "\t",
        "0",
        "-1",
        "1e309",
        "percnt",
        "minHelthy: 2",
        "nodeDrain: {}",
        "~",
        "ü",
        "\u{feff}",
        "? ",
        "|\n",
        ">-\n",
    ])
    .prop_map(str::to_owned);
    prop_oneof![
        (any::<usize>(), 1usize..20).prop_map(|(at, len)| Edit::Delete { at, len }),
        (any::<usize>(), fragment).prop_map(|(at, text)| Edit::Insert { at, text }),
        any::<usize>().prop_map(|line| Edit::DuplicateLine { line }),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Edit::SwapLines { a, b }),
        (any::<usize>(), 1usize..5).prop_map(|(line, by)| Edit::Indent { line, by }),
    ]
}

fn apply(text: &str, edit: &Edit) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let n = lines.len().max(1);
    match edit {
        Edit::Delete { at, len } => {
            let at = at % chars.len().max(1);
            let end = (at + len).min(chars.len());
            chars[..at].iter().chain(&chars[end..]).collect()
        }
        Edit::Insert { at, text: inserted } => {
            let at = at % (chars.len() + 1);
            let mut out: String = chars[..at].iter().collect();
            out.push_str(inserted);
            out.extend(&chars[at..]);
            out
        }
        Edit::DuplicateLine { line } => {
            let line = line % n;
            if let Some(copy) = lines.get(line).cloned() {
                lines.insert(line, copy);
            }
            lines.join("\n")
        }
        Edit::SwapLines { a, b } => {
            if !lines.is_empty() {
                lines.swap(a % n, b % n);
            }
            lines.join("\n")
        }
        Edit::Indent { line, by } => {
            if let Some(l) = lines.get_mut(line % n) {
                l.insert_str(0, &" ".repeat(*by));
            }
            lines.join("\n")
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn edited_scenarios_never_panic_and_every_problem_has_a_real_position(
        which in any::<usize>(),
        edits in prop::collection::vec(edit(), 1..4),
    ) {
        let examples = examples();
        let mut text = examples[which % examples.len()].clone();
        for e in &edits {
            text = apply(&text, e);
        }
        let loaded = scenario::load(&text, &|_| true);
        let lines = text.lines().count().max(1);
        for problem in &loaded.problems {
            prop_assert!(problem.line >= 1 && problem.column >= 1, "{problem}");
            // The end of the stream may be reported one line past the last.
            prop_assert!(problem.line <= lines + 1, "{problem} is past the end ({lines} lines)");
            prop_assert!(!problem.message.is_empty());
        }
    }
}
