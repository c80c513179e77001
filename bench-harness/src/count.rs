//! Counts written the way people say them on the command line: `500k`, `10M`, `1G`.

use std::fmt;
use std::str::FromStr;

/// A positive count parsed from an integer with an optional decimal suffix `k`, `M` or
/// `G` (case-insensitive) and shown back in the shortest exact such form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Count(pub usize);

const SUFFIXES: [(char, usize); 3] = [('G', 1_000_000_000), ('M', 1_000_000), ('k', 1_000)];

impl FromStr for Count {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (digits, scale) = match SUFFIXES
            .iter()
            .find(|(suffix, _)| s.ends_with(|c: char| c.eq_ignore_ascii_case(suffix)))
        {
            Some(&(_, scale)) => (&s[..s.len() - 1], scale),
            None => (s, 1),
        };
        let n: usize = digits
            .parse()
            .map_err(|_| format!("`{s}` is not a count like 2000, 500k, 10M or 1G"))?;
        match n.checked_mul(scale) {
            Some(0) => Err("the count must be at least 1".to_owned()),
            Some(n) => Ok(Count(n)),
            None => Err(format!("`{s}` is too large")),
        }
    }
}

impl fmt::Display for Count {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match SUFFIXES.iter().find(|&&(_, scale)| self.0 % scale == 0) {
            Some(&(suffix, scale)) => write!(f, "{}{suffix}", self.0 / scale),
            None => write!(f, "{}", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Count;

    fn parse(s: &str) -> Result<usize, String> {
        s.parse::<Count>().map(|c| c.0)
    }

    #[test]
    fn parses_suffixes() {
        assert_eq!(parse("2000"), Ok(2_000));
        assert_eq!(parse("500k"), Ok(500_000));
        assert_eq!(parse("500K"), Ok(500_000));
        assert_eq!(parse("10M"), Ok(10_000_000));
        assert_eq!(parse("100m"), Ok(100_000_000));
        assert_eq!(parse("1G"), Ok(1_000_000_000));
    }

    #[test]
    fn rejects_malformed_zero_and_overflow() {
        for bad in ["", "k", "M10", "1.5M", "-1", "10 M", "10MB", "0", "0k"] {
            assert!(parse(bad).is_err(), "{bad:?} parsed");
        }
        assert!(parse(&format!("{}G", usize::MAX / 10)).is_err());
    }

    #[test]
    fn displays_shortest_exact_form() {
        for (n, shown) in [(50_000, "50k"), (2_000_000, "2M"), (3_000_000_000, "3G")] {
            assert_eq!(Count(n).to_string(), shown);
            assert_eq!(parse(shown), Ok(n));
        }
        assert_eq!(Count(1_500_000).to_string(), "1500k");
        assert_eq!(Count(1_234).to_string(), "1234");
    }
}
