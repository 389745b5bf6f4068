//! IPv4 subnets as VPC sees them: CIDR blocks and the addresses AWS reserves in each.

use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;

/// An IPv4 CIDR block such as `10.1.2.0/24`, normalised to its network address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Ipv4Cidr {
    network: Ipv4Addr,
    prefix: u8,
}

/// Why a string is not a CIDR block.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an IPv4 CIDR block such as 10.0.1.0/24")]
pub struct CidrError(pub String);

impl Ipv4Cidr {
    /// Parses `a.b.c.d/n`. Host bits must be zero, as VPC requires.
    ///
    /// # Errors
    /// [`CidrError`] when the text is not a CIDR block or has host bits set.
    pub fn parse(text: &str) -> Result<Self, CidrError> {
        let err = || CidrError(text.chars().take(64).collect());
        let (addr, prefix) = text.split_once('/').ok_or_else(err)?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| err())?;
        let prefix: u8 = prefix.parse().map_err(|_| err())?;
        if prefix > 32 {
            return Err(err());
        }
        let cidr = Self { network: addr, prefix };
        if u32::from(addr) & !cidr.mask() != 0 {
            return Err(err());
        }
        Ok(cidr)
    }

    fn mask(&self) -> u32 {
        if self.prefix == 0 { 0 } else { u32::MAX << (32 - self.prefix) }
    }

    /// Whether `ip` lies inside this block.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.network)
    }

    /// The first address of the block.
    pub fn network(&self) -> Ipv4Addr {
        self.network
    }

    /// The prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// The last address of the block.
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) | !self.mask())
    }

    /// Whether AWS reserves `ip` in a subnet with this block: the network address, the next three (VPC
    /// router, DNS, future use) and the last address.
    /// <https://docs.aws.amazon.com/vpc/latest/userguide/subnet-sizing.html>
    pub fn is_aws_reserved(&self, ip: Ipv4Addr) -> bool {
        let n = u32::from(self.network);
        let v = u32::from(ip);
        self.contains(ip) && (v.wrapping_sub(n) <= 3 || ip == self.broadcast())
    }

    /// The `index`-th address of the block (0 is the network address), if inside it.
    pub fn nth(&self, index: u32) -> Option<Ipv4Addr> {
        let size = if self.prefix == 0 { u64::from(u32::MAX) + 1 } else { 1u64 << (32 - self.prefix) };
        (u64::from(index) < size).then(|| Ipv4Addr::from(u32::from(self.network) + index))
    }
}

impl std::fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

impl TryFrom<String> for Ipv4Cidr {
    type Error = CidrError;
    fn try_from(value: String) -> Result<Self, CidrError> {
        Self::parse(&value)
    }
}

impl From<Ipv4Cidr> for String {
    fn from(value: Ipv4Cidr) -> String {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("10.0.1.0/24", true)]
    #[case("10.0.1.1/24", false)]
    #[case("10.0.1.0/33", false)]
    #[case("10.0.1/24", false)]
    #[case("nonsense", false)]
    fn cidr_blocks_parse_only_with_zero_host_bits(#[case] text: &str, #[case] ok: bool) {
        assert_eq!(Ipv4Cidr::parse(text).is_ok(), ok, "{text}");
    }

    #[rstest]
    #[case("10.0.1.0", true)]
    #[case("10.0.1.1", true)]
    #[case("10.0.1.2", true)]
    #[case("10.0.1.3", true)]
    #[case("10.0.1.4", false)]
    #[case("10.0.1.254", false)]
    #[case("10.0.1.255", true)]
    #[case("10.0.2.7", false)]
    fn aws_reserves_the_first_four_and_the_last_address(#[case] ip: &str, #[case] reserved: bool) {
        let cidr = Ipv4Cidr::parse("10.0.1.0/24").unwrap();
        assert_eq!(cidr.is_aws_reserved(ip.parse().unwrap()), reserved, "{ip}");
    }

    #[test]
    fn containment_follows_the_prefix() {
        let cidr = Ipv4Cidr::parse("10.0.0.0/20").unwrap();
        assert!(cidr.contains("10.0.15.200".parse().unwrap()));
        assert!(!cidr.contains("10.0.16.1".parse().unwrap()));
        assert_eq!(cidr.broadcast(), "10.0.15.255".parse::<Ipv4Addr>().unwrap());
    }
}
