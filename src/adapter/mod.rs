//! Adapter table, routes, send conditions and De/Para.
