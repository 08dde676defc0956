//! Pure encoders and decoders for every on-disk structure, byte for byte as `spec/FORMAT.md` says.
//! No I/O here: decoders take `&[u8]` and return `Result<_, FormatError>` naming the offset.
