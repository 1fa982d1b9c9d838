//! Building the merge patch of `eddy events edit`: from `--set data.path=value` flags, or
//! from the difference between the data before and after `$EDITOR`.

use anyhow::{Context, anyhow, bail};
use serde_json::{Map, Value};

/// A merge patch setting each `data.a.b=value` (the `data.` prefix is optional).
pub fn patch_from_sets(sets: &[String]) -> anyhow::Result<Value> {
    let mut patch = Value::Object(Map::new());
    for set in sets {
        let (path, raw) = set
            .split_once('=')
            .ok_or_else(|| anyhow!("--set {set:?}: expected PATH=VALUE"))?;
        // Only data can be edited, so `email=x` and `data.email=x` mean the same.
        let keys: Vec<&str> = path.strip_prefix("data.").unwrap_or(path).split('.').collect();
        if keys.is_empty() || keys.iter().any(|k| k.is_empty()) {
            bail!("--set {set:?}: the path needs a field, like data.email");
        }
        let value = serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_owned()));
        let mut node = &mut patch;
        for key in &keys[..keys.len() - 1] {
            node = node
                .as_object_mut()
                .context("a path goes through a value set by another --set")?
                .entry(key.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
        }
        node.as_object_mut()
            .context("a path goes through a value set by another --set")?
            .insert(keys[keys.len() - 1].to_owned(), value);
    }
    Ok(patch)
}

/// Opens `data` as pretty JSON in `$EDITOR` (or `vi`) and returns the merge patch from it to
/// what was saved.
pub fn patch_in_editor(data: &Value) -> anyhow::Result<Value> {
    let file = std::env::temp_dir().join(format!("eddy-edit-{}.json", std::process::id()));
    std::fs::write(&file, serde_json::to_string_pretty(data)?).context("cannot write the temporary file")?;
    let editor = std::env::var("EDITOR").unwrap_or_else(|_| "vi".into());
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{editor} \"$1\""))
        .arg("sh")
        .arg(&file)
        .status()
        .with_context(|| format!("cannot start the editor {editor:?}"))?;
    let text = std::fs::read_to_string(&file);
    let _ = std::fs::remove_file(&file);
    if !status.success() {
        bail!("the editor exited with {status}; nothing was changed");
    }
    let edited: Value =
        serde_json::from_str(&text?).context("the edited data is not valid JSON; nothing was changed")?;
    Ok(crate::services::merge_patch_between(data, &edited))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sets_become_a_merge_patch() {
        let sets = ["data.email=ada@example.com", "data.address.zip=12345", "data.vip=true"].map(String::from);
        let patch = patch_from_sets(&sets).unwrap();
        assert_eq!(
            patch,
            json!({"email": "ada@example.com", "address": {"zip": 12345}, "vip": true})
        );
        assert_eq!(
            patch_from_sets(&["plan=pro".to_owned()]).unwrap(),
            json!({"plan": "pro"})
        );
        for bad in ["=x", "data.=x", "data", "a..b=1"] {
            assert!(patch_from_sets(&[bad.to_owned()]).is_err(), "{bad}");
        }
    }
}
