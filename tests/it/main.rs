//! Every integration test in one binary: llama.cpp is linked once, not once
//! per file. Tests that must own their process (peak-memory measurements)
//! stay in binaries of their own (`tests/memory.rs`).

mod common;

mod anthropic;
mod audio;
mod bench;
mod budgets;
mod chat;
mod chat_template;
mod choices;
mod completions;
mod concurrency;
mod context;
mod deploy;
mod embeddings;
mod errors;
mod faithfulness;
mod families;
mod first_run;
mod fuzz;
mod hostile;
mod http;
mod hub;
mod image_cache;
mod kv_cache;
mod layout;
mod nginx;
mod openapi;
mod playground;
mod pricing;
mod reasoning;
mod reliability;
mod responses;
mod router;
mod sampling;
mod soak;
mod speculation;
mod stored;
mod structured;
mod templates;
mod tiling;
mod tools;
mod video;
