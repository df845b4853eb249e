//! Reports: what an exercise found. `model` is the versioned JSON document, the source of
//! truth the renderers (later) read. PURE.

pub mod model;
