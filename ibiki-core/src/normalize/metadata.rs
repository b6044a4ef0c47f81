//! Number rules read from the `phonenumber` crate's metadata, compiled once.
//!
//! ibiki uses the crate's metadata but not its parser: the parser strips the
//! default region's national prefix from `+` input (dropping digits), strips a
//! national prefix twice (truncating Russian `8 800` numbers), maps letters to
//! digits, and compiles patterns through a 100-entry global cache that thrashes
//! once a list spans more than a handful of regions. Here every pattern is
//! compiled on first use of its country and kept for the life of the process.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};

use phonenumber::metadata::{DATABASE, Descriptor};
use phonenumber::{Metadata, Type};
use regex::Regex;

/// The rules of one region (`US`, `GB`, or `001` for non-geographic codes).
#[derive(Debug)]
pub(crate) struct RegionRules {
    pub(crate) id: String,
    pub(crate) code: u16,
    leading_digits: Option<Regex>,
    general: Pattern,
    kinds: Vec<Pattern>,
    national_prefix: Option<String>,
    national_prefix_for_parsing: Option<Regex>,
    transform_rule: Option<String>,
    international_prefix: Option<Regex>,
}

/// A number pattern with its possible lengths.
#[derive(Debug)]
struct Pattern {
    regex: Regex,
    lengths: Vec<u16>,
}

/// The number types that make a number valid (libphonenumber's `getNumberType`).
const KINDS: [Type; 10] = [
    Type::PremiumRate,
    Type::TollFree,
    Type::SharedCost,
    Type::Voip,
    Type::PersonalNumber,
    Type::Pager,
    Type::Uan,
    Type::Voicemail,
    Type::FixedLine,
    Type::Mobile,
];

impl Pattern {
    fn new(desc: &Descriptor, fallback_lengths: &[u16]) -> Option<Self> {
        let lengths = if desc.possible_length().is_empty() {
            fallback_lengths.to_vec()
        } else {
            desc.possible_length().to_vec()
        };
        let regex = full_match(desc.national_number().as_str())?;
        Some(Self { regex, lengths })
    }

    fn matches(&self, national: &str) -> bool {
        let len = u16::try_from(national.len()).unwrap_or(u16::MAX);
        self.lengths.contains(&len) && self.regex.is_match(national)
    }
}

/// The metadata's patterns are laid out over several lines; whitespace in them
/// is layout, not pattern.
fn compact(source: &str) -> String {
    source.chars().filter(|c| !c.is_whitespace()).collect()
}

fn full_match(source: &str) -> Option<Regex> {
    Regex::new(&format!("^(?:{})$", compact(source))).ok()
}

fn prefix_match(source: &str) -> Option<Regex> {
    Regex::new(&format!("^(?:{})", compact(source))).ok()
}

/// A regex that matches nothing, for a region without a general pattern.
fn never() -> Regex {
    Regex::new("[^\\s\\S]").unwrap_or_else(|_| unreachable!("literal pattern"))
}

/// The general description's lengths; where the metadata leaves them out,
/// the union of every number type's (as libphonenumber's build computes them).
fn general_lengths(general: &Descriptor, kinds: &[&Descriptor]) -> Vec<u16> {
    if !general.possible_length().is_empty() {
        return general.possible_length().to_vec();
    }
    let mut lengths: Vec<u16> = kinds
        .iter()
        .flat_map(|d| d.possible_length().iter().copied())
        .collect();
    lengths.sort_unstable();
    lengths.dedup();
    lengths
}

impl RegionRules {
    fn compile(meta: &Metadata) -> Self {
        let descriptors: Vec<&Descriptor> = KINDS
            .iter()
            .filter_map(|&kind| meta.descriptors().get(kind))
            .collect();
        let general_lengths = general_lengths(meta.descriptors().general(), &descriptors);
        let general =
            Pattern::new(meta.descriptors().general(), &general_lengths).unwrap_or(Pattern {
                regex: never(),
                lengths: Vec::new(),
            });
        let kinds = descriptors
            .into_iter()
            .filter_map(|desc| Pattern::new(desc, &general.lengths))
            .collect();
        Self {
            id: meta.id().to_owned(),
            code: meta.country_code(),
            leading_digits: meta.leading_digits().and_then(|r| prefix_match(r.as_str())),
            general,
            kinds,
            national_prefix: meta.national_prefix().map(str::to_owned),
            national_prefix_for_parsing: meta
                .national_prefix_for_parsing()
                .and_then(|r| prefix_match(r.as_str()))
                .or_else(|| {
                    meta.national_prefix()
                        .and_then(|p| prefix_match(&regex::escape(p)))
                }),
            // Java's `$1` becomes `${1}` so that a digit after it is not read
            // as part of the group number.
            transform_rule: meta.national_prefix_transform_rule().map(|rule| {
                Regex::new(r"\$(\d)").map_or_else(
                    |_| rule.to_owned(),
                    |re| re.replace_all(rule, "$${${1}}").into_owned(),
                )
            }),
            international_prefix: meta
                .international_prefix()
                .and_then(|r| prefix_match(r.as_str())),
        }
    }

    /// libphonenumber's `isValidNumberForRegion` on a national significant number.
    fn is_valid(&self, national: &str) -> bool {
        self.general.matches(national) && self.kinds.iter().any(|k| k.matches(national))
    }

    /// The length is one the region's numbers can have.
    pub(crate) fn is_possible_length(&self, national: &str) -> bool {
        let len = u16::try_from(national.len()).unwrap_or(u16::MAX);
        self.general.lengths.contains(&len)
    }

    /// The fewest and the most digits the region's numbers have.
    fn length_range(&self) -> Option<(u16, u16)> {
        let lengths = &self.general.lengths;
        Some((*lengths.iter().min()?, *lengths.iter().max()?))
    }

    /// The digits after this region's international dialling prefix (`011`,
    /// `00`), if they start with one.
    pub(crate) fn strip_international_prefix<'a>(&self, digits: &'a str) -> Option<&'a str> {
        let m = self.international_prefix.as_ref()?.find(digits)?;
        // A prefix followed by a 0 is not an IDD: country codes never start with 0.
        let rest = &digits[m.end()..];
        (m.end() > 0 && !rest.starts_with('0')).then_some(rest)
    }

    /// libphonenumber's `maybeStripNationalPrefixAndCarrierCode`: removes the
    /// national (trunk) prefix, applying the region's transform rule, unless
    /// that would turn a number that fits the region into one that does not.
    pub(crate) fn strip_national_prefix(&self, national: &str) -> String {
        let Some(re) = &self.national_prefix_for_parsing else {
            return national.to_owned();
        };
        let Some(caps) = re.captures(national) else {
            return national.to_owned();
        };
        let viable = self.general.regex.is_match(national);
        let whole = caps.get(0).map_or(0, |m| m.end());
        let last = caps.len() - 1;
        let transformed = match (&self.transform_rule, caps.get(last).filter(|_| last > 0)) {
            (Some(rule), Some(group)) if !group.as_str().is_empty() => {
                let mut out = String::new();
                caps.expand(rule, &mut out);
                out.push_str(&national[whole..]);
                out
            }
            _ => national[whole..].to_owned(),
        };
        if viable && !self.general.regex.is_match(&transformed) {
            return national.to_owned();
        }
        transformed
    }
}

/// All regions sharing one country calling code.
#[derive(Debug)]
pub(crate) struct CountryRules {
    regions: Vec<Arc<RegionRules>>,
}

impl CountryRules {
    /// libphonenumber's `isValidNumber`: the number is valid in the region its
    /// leading digits select.
    pub(crate) fn is_valid(&self, national: &str) -> bool {
        self.region_for(national)
            .is_some_and(|r| r.is_valid(national))
    }

    /// Whether `national` is shorter or longer than every number of the
    /// country's main region: `Less` (too short), `Greater` (too long), or
    /// `Equal` when its length is within their range.
    pub(crate) fn length_fit(&self, national: &str) -> (std::cmp::Ordering, u16, u16) {
        let Some((min, max)) = self.regions.first().and_then(|r| r.length_range()) else {
            return (std::cmp::Ordering::Equal, 0, 0);
        };
        let len = u16::try_from(national.len()).unwrap_or(u16::MAX);
        let fit = if len < min {
            std::cmp::Ordering::Less
        } else if len > max {
            std::cmp::Ordering::Greater
        } else {
            std::cmp::Ordering::Equal
        };
        (fit, min, max)
    }

    /// libphonenumber's `isPossibleNumber` (lengths of the main region).
    pub(crate) fn is_possible(&self, national: &str) -> bool {
        self.regions
            .first()
            .is_some_and(|r| r.is_possible_length(national))
    }

    fn region_for(&self, national: &str) -> Option<&RegionRules> {
        if let [only] = self.regions.as_slice() {
            return Some(only);
        }
        self.regions
            .iter()
            .map(AsRef::as_ref)
            .find(|r| match &r.leading_digits {
                Some(lead) => lead.is_match(national),
                None => r.is_valid(national),
            })
    }

    /// A region of this code with its national prefix: used to tell an admin
    /// that `+44 020…` carries a trunk prefix.
    pub(crate) fn main_region(&self) -> Option<&RegionRules> {
        self.regions.first().map(AsRef::as_ref)
    }
}

type Cache<K, V> = RwLock<HashMap<K, Arc<V>>>;

fn countries() -> &'static Cache<u16, CountryRules> {
    static CACHE: OnceLock<Cache<u16, CountryRules>> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

fn regions() -> &'static Cache<String, RegionRules> {
    static CACHE: OnceLock<Cache<String, RegionRules>> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

fn cached<K, V>(cache: &Cache<K, V>, key: K, build: impl FnOnce() -> Option<V>) -> Option<Arc<V>>
where
    K: std::hash::Hash + Eq,
{
    if let Some(hit) = cache.read().unwrap_or_else(|e| e.into_inner()).get(&key) {
        return Some(Arc::clone(hit));
    }
    let built = Arc::new(build()?);
    let mut map = cache.write().unwrap_or_else(|e| e.into_inner());
    Some(Arc::clone(map.entry(key).or_insert(built)))
}

/// The id every non-geographic entity (`+800`, `+882`, …) shares.
const NON_GEOGRAPHIC: &str = "001";

/// The rules of a region by its id (`"US"`, case-sensitive). Not for
/// [`NON_GEOGRAPHIC`], which names several entities: see [`country`].
pub(crate) fn region(id: &str) -> Option<Arc<RegionRules>> {
    if id == NON_GEOGRAPHIC {
        return None;
    }
    cached(regions(), id.to_owned(), || {
        DATABASE.by_id(id).map(RegionRules::compile)
    })
}

/// The rules of a country calling code; `None` if it is not assigned.
///
/// Built from the code's own metadata entries: `DATABASE.by_id("001")` holds
/// only the last non-geographic entity loaded (`+979`), so looking the
/// regions up by id would judge `+800` numbers by `+979`'s patterns.
pub(crate) fn country(code: u16) -> Option<Arc<CountryRules>> {
    cached(countries(), code, || {
        let entries = DATABASE.by_code(&code)?;
        let regions: Option<Vec<_>> = entries.into_iter().map(region_of).collect();
        let regions = regions?;
        (!regions.is_empty()).then_some(CountryRules { regions })
    })
}

/// The rules of one metadata entry of a country code.
fn region_of(meta: &Metadata) -> Option<Arc<RegionRules>> {
    if meta.id() == NON_GEOGRAPHIC {
        // One entity per code: cached with its country.
        return Some(Arc::new(RegionRules::compile(meta)));
    }
    region(meta.id())
}

/// Splits E.164 digits into a known country code and the national number.
/// Country codes are prefix-free, so at most one split matches.
pub(crate) fn split_country_code(digits: &str) -> Option<(u16, Arc<CountryRules>, &str)> {
    (1..=3.min(digits.len())).find_map(|len| {
        let code: u16 = digits[..len].parse().ok()?;
        country(code).map(|rules| (code, rules, &digits[len..]))
    })
}

/// Whether the `0` at `at` in E.164 `digits` directly follows the country
/// code of a country whose trunk prefix is `0`: `+44 (0)20 …` but not
/// `+39 (0)6 …`, where Italy's `0` is part of the number.
pub(crate) fn is_trunk_zero(digits: &str, at: usize) -> bool {
    split_country_code(digits).is_some_and(|(_, country, national)| {
        digits.len() - national.len() == at
            && country
                .main_region()
                .is_some_and(|r| r.national_prefix.as_deref() == Some("0"))
    })
}

/// Compiles the rules of every region now, so that the first request that
/// needs a new region does not pay for it.
pub(crate) fn warm_up() {
    for code in 1..1000 {
        if DATABASE.by_code(&code).is_some() {
            let _ = country(code);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_stay_compiled_past_phonenumbers_100_regex_cache() {
        // phonenumber compiles patterns through one 100-entry cache shared
        // by every region: a list spanning a few dozen regions recompiles
        // them over and over. ibiki keeps every region's rules for good.
        let first = country(1).expect("+1");
        warm_up();
        let codes = (1..1000u16).filter(|c| DATABASE.by_code(c).is_some());
        assert!(codes.count() > 200);
        let again = country(1).expect("+1");
        assert!(Arc::ptr_eq(&first, &again));
        assert!(Arc::ptr_eq(&first.regions[0], &again.regions[0]));
    }

    #[test]
    fn non_geographic_codes_have_their_own_rules() {
        let toll_free = country(800).expect("+800");
        let iridium = country(881).expect("+881");
        assert!(toll_free.is_valid("12345678"));
        assert!(!iridium.is_valid("12345678"));
        assert!(region(NON_GEOGRAPHIC).is_none());
    }
}
