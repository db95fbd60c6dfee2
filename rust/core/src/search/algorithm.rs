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
    /// Two-level block-max pruning: 64-document doc blocks, then 16-document fine blocks
    /// (after Carlson et al. 2025's superblock pruning on top of Mallia et al. 2024).
    SuperblockPruning,
    /// Block-max term-at-a-time MaxScore: the query's essential terms accumulated exhaustively,
    /// the others bounded per 16-document block, survivors rescored from stored vectors.
    BlockMaxTaat,
    /// Approximate search at a recall target (see [`super::approx`]); not in [`Algorithm::ALL`].
    Approximate(super::approx::RecallTarget),
    /// Chosen per query by the measured rule of `search::auto`.
    Auto,
}

impl Algorithm {
    /// Every exact algorithm (and auto), by its canonical name.
    pub const ALL: [Algorithm; 10] = [
        Algorithm::Exhaustive,
        Algorithm::MaxScore,
        Algorithm::Wand,
        Algorithm::BlockMaxWand,
        Algorithm::BlockMaxMaxScore,
        Algorithm::TaatMaxScore,
        Algorithm::BlockMaxPruning,
        Algorithm::SuperblockPruning,
        Algorithm::BlockMaxTaat,
        Algorithm::Auto,
    ];
    /// Whether this is a document-at-a-time algorithm (MaxScore, WAND, BMW, BMM), whose cost
    /// grows as query terms x documents visited: minutes on a query of 100,000 terms, where
    /// the others take a fraction of a second (helper-119). The bindings make such searches of
    /// long queries interruptible.
    pub fn is_document_at_a_time(self) -> bool {
        matches!(self, Algorithm::MaxScore | Algorithm::Wand | Algorithm::BlockMaxWand | Algorithm::BlockMaxMaxScore)
    }

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
            Algorithm::SuperblockPruning => "sp",
            Algorithm::BlockMaxTaat => "bmt",
            Algorithm::Approximate(_) => "approximate",
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
            "sp" | "superblock" | "superblock_pruning" => Algorithm::SuperblockPruning,
            "bmt" | "block_max_taat" => Algorithm::BlockMaxTaat,
            "auto" => Algorithm::Auto,
            "approximate" | "approx" => Algorithm::Approximate(super::approx::RecallTarget::DEFAULT),
            _ => {
                return Err(Error::InvalidArgument(format!(
                    "unknown algorithm '{s}' (choose one of: exhaustive, maxscore, wand, bmw, bmm, taat-maxscore, bmp, sp, bmt, auto, approximate)"
                )))
            }
        })
    }
}
