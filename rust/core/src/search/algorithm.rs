//! The traversal algorithms by name: the one list of names and aliases (Python asks it).

use crate::{Error, Result};
use std::fmt;
use std::str::FromStr;

/// A traversal algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// Term-at-a-time over every posting of every query term; the oracle.
    Exhaustive,
    /// MaxScore (Turtle & Flood 1995).
    MaxScore,
    /// WAND (Broder et al. 2003).
    Wand,
    /// Block-Max WAND (Ding & Suel 2011).
    BlockMaxWand,
    /// Block-Max MaxScore (MaxScore with block-max bounds on the non-essential lists).
    BlockMaxMaxScore,
    /// Term-at-a-time MaxScore: accumulate the high-bound terms, then only probe the rest for
    /// surviving candidates.
    TaatMaxScore,
    /// Block-max pruning over 64-document blocks (Mallia, Suel & Tonellotto 2024).
    BlockMaxPruning,
    /// Chosen per query by the measured rule of `search::run_auto`.
    Auto,
}

impl Algorithm {
    /// Every algorithm, by its canonical name.
    pub const ALL: [Algorithm; 8] = [
        Algorithm::Exhaustive,
        Algorithm::MaxScore,
        Algorithm::Wand,
        Algorithm::BlockMaxWand,
        Algorithm::BlockMaxMaxScore,
        Algorithm::TaatMaxScore,
        Algorithm::BlockMaxPruning,
        Algorithm::Auto,
    ];
    /// Canonical name.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Exhaustive => "exhaustive",
            Algorithm::MaxScore => "maxscore",
            Algorithm::Wand => "wand",
            Algorithm::BlockMaxWand => "bmw",
            Algorithm::BlockMaxMaxScore => "bmm",
            Algorithm::TaatMaxScore => "taat-maxscore",
            Algorithm::BlockMaxPruning => "bmp",
            Algorithm::Auto => "auto",
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Algorithm {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "exhaustive" | "taat" | "oracle" => Algorithm::Exhaustive,
            "maxscore" => Algorithm::MaxScore,
            "wand" => Algorithm::Wand,
            "bmw" | "block_max_wand" | "blockmaxwand" => Algorithm::BlockMaxWand,
            "bmm" | "block_max_maxscore" | "blockmaxmaxscore" => Algorithm::BlockMaxMaxScore,
            "taat-maxscore" | "taat_maxscore" | "tms" => Algorithm::TaatMaxScore,
            "bmp" | "block_max_pruning" => Algorithm::BlockMaxPruning,
            "auto" => Algorithm::Auto,
            _ => {
                return Err(Error::InvalidArgument(format!(
                    "unknown algorithm '{s}' (choose one of: exhaustive, maxscore, wand, bmw, bmm, taat-maxscore, bmp, auto)"
                )))
            }
        })
    }
}
