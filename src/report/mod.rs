//! Reports: what an exercise found. `model` is the versioned JSON document, the source of
//! truth; `render` (Markdown, JUnit) and `html` read it; `trend` reads many; `annotate` adds
//! what the team learned. PURE but for `annotate`'s and `trend`'s file access.

pub mod html;
pub mod model;
pub mod render;
pub mod review;
pub mod stats;
pub mod store;
pub mod text;
pub mod trend;
