//! Tests for the router codecs, one module per codec.

mod control;
mod resize;
mod size;
mod udp;
