#[path = "integration/data_plane.rs"]
mod data_plane;
