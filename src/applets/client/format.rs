//! Output formats shared by the list commands: LXD's bordered table, csv, json, yaml and
//! compact.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Table,
    Csv,
    Json,
    Yaml,
    Compact,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "table" => Ok(Format::Table),
            "csv" => Ok(Format::Csv),
            "json" => Ok(Format::Json),
            "yaml" => Ok(Format::Yaml),
            "compact" => Ok(Format::Compact),
            other => Err(format!("Invalid format \"{other}\"")),
        }
    }
}

/// A bordered table with separators between rows and centred headers, laid out like the Go
/// tablewriter LXD uses (an odd padding goes to the right). Cells may span several lines.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let width = |s: &str| s.lines().map(|l| l.chars().count()).max().unwrap_or(0);
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(width(c));
            }
        }
    }
    let border = format!("+{}+", widths.iter().map(|w| "-".repeat(w + 2)).collect::<Vec<_>>().join("+"));
    let mut out = vec![border.clone()];
    let header = headers
        .iter()
        .zip(&widths)
        .map(|(h, w)| {
            let pad = w - h.chars().count();
            format!(" {}{}{} ", " ".repeat(pad / 2), h, " ".repeat(pad - pad / 2))
        })
        .collect::<Vec<_>>()
        .join("|");
    out.push(format!("|{header}|"));
    out.push(border.clone());
    for r in rows {
        let cells: Vec<Vec<&str>> = r.iter().map(|c| c.split('\n').collect()).collect();
        let height = cells.iter().map(Vec::len).max().unwrap_or(1).max(1);
        for line in 0..height {
            let text = widths
                .iter()
                .enumerate()
                .map(|(i, w)| {
                    let c = cells.get(i).and_then(|c| c.get(line)).copied().unwrap_or("");
                    format!(" {}{} ", c, " ".repeat(w - c.chars().count()))
                })
                .collect::<Vec<_>>()
                .join("|");
            out.push(format!("|{text}|"));
        }
        out.push(border.clone());
    }
    out.join("\n")
}

/// Renders rows in the requested tabular format; json/yaml print `raw` instead.
pub fn render<T: serde::Serialize>(format: Format, headers: &[&str], rows: &[Vec<String>], raw: &T) -> String {
    match format {
        Format::Table => table(headers, rows) + "\n",
        Format::Csv => {
            let mut out = String::new();
            for r in rows {
                let cells: Vec<String> = r
                    .iter()
                    .map(|c| {
                        let c = c.replace('\n', ",");
                        if c.contains(',') || c.contains('"') { format!("\"{}\"", c.replace('"', "\"\"")) } else { c }
                    })
                    .collect();
                out.push_str(&cells.join(","));
                out.push('\n');
            }
            out
        }
        Format::Json => serde_json::to_string(raw).unwrap_or_default() + "\n",
        Format::Yaml => serde_yaml::to_string(raw).unwrap_or_default(),
        Format::Compact => {
            let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
            for r in rows {
                for (i, c) in r.iter().enumerate() {
                    if let Some(w) = widths.get_mut(i) {
                        *w = (*w).max(c.len());
                    }
                }
            }
            let line = |cells: Vec<&str>| {
                let padded: Vec<String> = cells.iter().enumerate().map(|(i, c)| format!("{c:<w$}", w = widths[i])).collect();
                format!("  {}", padded.join("  ").trim_end())
            };
            let mut out = line(headers.to_vec()) + "\n";
            for r in rows {
                out.push_str(&line(r.iter().map(String::as_str).collect()));
                out.push('\n');
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_line_cells_span_rows() {
        let t = table(&["NAME", "ROLES"], &[vec!["node1".into(), "database-leader\ndatabase".into()]]);
        assert!(t.contains("| node1 | database-leader |\n|       | database        |"), "{t}");
    }

    #[test]
    fn table_matches_lxd_layout() {
        let t = table(&["NAME", "STATE"], &[vec!["node1".into(), "ONLINE".into()]]);
        let expected = "+-------+--------+\n\
                        | NAME  | STATE  |\n\
                        +-------+--------+\n\
                        | node1 | ONLINE |\n\
                        +-------+--------+";
        assert_eq!(t, expected);
    }
}

/// YAML as LXD prints it (Go yaml.v2): scalars that need quoting get double quotes.
pub fn yaml<T: serde::Serialize>(value: &T) -> anyhow::Result<String> {
    let text = serde_yaml::to_string(value)?;
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        out.push_str(&requote(line));
        out.push('\n');
    }
    Ok(out)
}

fn requote(line: &str) -> String {
    let Some(stripped) = line.strip_suffix('\'') else {
        return line.to_string();
    };
    let start = match (stripped.rfind(": '"), stripped.rfind("- '")) {
        (Some(a), Some(b)) => a.max(b),
        (Some(a), None) => a,
        (None, Some(b)) => b,
        (None, None) => return line.to_string(),
    };
    let inner = &stripped[start + 3..];
    if inner.contains('\'') || inner.contains('"') || inner.contains('\\') {
        return line.to_string();
    }
    format!("{}\"{inner}\"", &stripped[..start + 2])
}

#[cfg(test)]
mod yaml_tests {
    #[test]
    fn numbers_and_empty_strings_are_double_quoted() {
        let v = serde_json::json!({"config": {"limits.cpu": "2"}, "description": "", "name": "it's"});
        let y = super::yaml(&v).expect("yaml");
        assert!(y.contains("limits.cpu: \"2\""), "{y}");
        assert!(y.contains("description: \"\""), "{y}");
        assert!(y.contains("name: it's"), "{y}");
    }
}

/// Bytes as LXD's client shows them (`392.00KiB`).
pub fn bytes_iec(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 { format!("{n}B") } else { format!("{v:.2}{}", UNITS[i]) }
}
