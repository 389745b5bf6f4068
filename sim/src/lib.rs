//! The simulated AWS estate: accounts, two regions, EC2 and DRS, loaded from a scenario file and run on a
//! virtual clock.
//!
//! The simulated world plays the part of AWS, so it outlives the console: its state is saved in the data
//! folder and a restarted server finds it as AWS would have left it — virtual time went on while the
//! console was down. It implements the engine's cloud port: DRS and EC2 reads, launch configuration, and recovery jobs
//! (`StartRecovery` into the configured standbys). It is a real stateful implementation, not a mock: tests drive failures through it.

pub mod clock;
pub mod ec2;
pub mod generate;
pub mod jobs;
pub mod reverse;
pub mod scenario;
pub mod state;
pub mod wire;
pub mod world;

pub use clock::SimClock;
pub use scenario::Scenario;
pub use world::Simulator;

/// The bundled default scenario: a few applications in web/app/db tiers with realistic problems.
/// It is the output of `roundtrip sim generate --servers 96 --seed 7 --problems`; a test keeps it so.
pub const DEFAULT_SCENARIO: &str = include_str!("../../scenarios/default.toml");

#[cfg(test)]
mod tests {
    use super::*;
    use generate::{GenerateOptions, generate};

    #[test]
    fn the_bundled_scenario_is_the_generators_output_and_loads() {
        let generated = generate(GenerateOptions { servers: 96, seed: 7, problems: true });
        assert_eq!(
            DEFAULT_SCENARIO,
            generated.to_toml().unwrap(),
            "regenerate with: roundtrip sim generate --servers 96 --seed 7 --problems --out scenarios/default.toml"
        );
        let loaded = Scenario::from_toml(DEFAULT_SCENARIO).unwrap();
        assert_eq!(loaded, generated);
        // The same estate as JSON loads the same, and is checked the same.
        let json = serde_json::to_string(&generated).unwrap();
        assert_eq!(Scenario::from_json(&json).unwrap(), generated);
        let dangling = json.replacen("\"subnet-01000000000000001\"", "\"subnet-0ffffffffffffffff\"", 1);
        assert!(matches!(Scenario::from_json(&dangling), Err(crate::scenario::ScenarioError::Invalid(_))));
        assert!(matches!(Scenario::from_json("{"), Err(crate::scenario::ScenarioError::Json(_))));
    }

    #[test]
    fn a_scenario_with_a_dangling_reference_is_refused_with_its_name() {
        let text = DEFAULT_SCENARIO.replacen(
            "subnet_id = \"subnet-01000000000000001\"\naccount_id",
            "subnet_id = \"subnet-0ffffffffffffffff\"\naccount_id",
            1,
        );
        let err = Scenario::from_toml(&text).unwrap_err().to_string();
        assert!(err.contains("subnet-01000000000000001"), "{err}");
    }

    #[test]
    fn a_name_tag_of_ten_kilobytes_never_enters_the_estate() {
        let huge = format!("<script>{}</script>", "x".repeat(10 * 1024));
        let text = DEFAULT_SCENARIO.replacen("Name = \"hr-web-01\"", &format!("Name = \"{huge}\""), 1);
        let err = Scenario::from_toml(&text).unwrap_err().to_string();
        assert!(err.contains("over 256 characters"), "{err}");
        assert!(err.len() < 400, "the error names the tag without repeating it: {} bytes", err.len());
    }
}
