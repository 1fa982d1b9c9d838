//! Record encoding: one version byte, then JSON. A record of an unknown version is an error,
//! never silently skipped.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::StoreError;

/// `version` followed by the JSON of `value`.
pub fn encode<T: Serialize>(version: u8, value: &T) -> Result<Vec<u8>, StoreError> {
    let mut out = vec![version];
    serde_json::to_writer(&mut out, value).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok(out)
}

/// The record in `raw`, which must carry `version`.
pub fn decode<T: DeserializeOwned>(version: u8, raw: &[u8]) -> Result<T, StoreError> {
    match raw.split_first() {
        Some((&found, json)) if found == version => {
            serde_json::from_slice(json).map_err(|e| StoreError::Corrupt(e.to_string()))
        }
        Some((&found, _)) => Err(StoreError::Corrupt(format!(
            "record version {found}, expected {version}"
        ))),
        None => Err(StoreError::Corrupt("empty record".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_version_check() {
        let raw = encode(3, &vec![1, 2]).unwrap();
        assert_eq!(raw[0], 3);
        assert_eq!(decode::<Vec<i32>>(3, &raw).unwrap(), [1, 2]);
        assert!(matches!(decode::<Vec<i32>>(4, &raw), Err(StoreError::Corrupt(_))));
        assert!(decode::<Vec<i32>>(3, &[]).is_err());
    }
}
