//! The one-line reports a child process prints for its parent: a tag, then `key=value` fields
//! separated by whitespace. [`fields`] splits one; each report type maps the keys to its fields.

/// One field's value, parsed as its report's key says.
#[derive(Clone, Copy, Debug)]
pub struct Value<'a>(&'a str);

impl<'a> Value<'a> {
    /// The text itself.
    pub fn text(self) -> String {
        self.0.to_owned()
    }

    /// As an unsigned integer; `None` if it is not one.
    pub fn u64(self) -> Option<u64> {
        self.0.parse().ok()
    }

    /// As a float; `None` if it is not one.
    pub fn f64(self) -> Option<f64> {
        self.0.parse().ok()
    }
}

/// The `key=value` fields of `line` after `tag`; `None` if the line does not start with `tag`
/// or a field has no `=`.
pub fn fields<'a>(line: &'a str, tag: &str) -> Option<Vec<(&'a str, Value<'a>)>> {
    line.strip_prefix(tag)?
        .split_whitespace()
        .map(|pair| pair.split_once('=').map(|(k, v)| (k, Value(v))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_tagged_lines_and_refuses_others() {
        let got = fields("@x a=1 b=2.5 c=kv", "@x ").unwrap();
        let keys: Vec<&str> = got.iter().map(|(k, _)| *k).collect();
        assert_eq!(keys, ["a", "b", "c"]);
        assert_eq!(got[0].1.u64(), Some(1));
        assert_eq!(got[1].1.f64(), Some(2.5));
        assert_eq!(got[1].1.u64(), None);
        assert_eq!(got[2].1.text(), "kv");
        assert!(fields("@y a=1", "@x ").is_none());
        assert!(fields("@x a", "@x ").is_none());
    }
}
