//! The `cx` command-line front end and, later, the TCP server.
