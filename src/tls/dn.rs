//! The SNC name of an X.509 certificate: its subject as an RFC 4514 string (last RDN first,
//! short attribute types, special characters escaped), prefixed with `p:` as SAP writes
//! X.509 SNC names (`p:CN=SAPROUTER1, O=Example`).

use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::x509::{AttributeTypeAndValue, X509Name};

/// Attribute types RFC 4514 (and common practice) writes by short name.
const SHORT_NAMES: &[(&str, &str)] = &[
    ("2.5.4.3", "CN"),
    ("2.5.4.6", "C"),
    ("2.5.4.7", "L"),
    ("2.5.4.8", "ST"),
    ("2.5.4.9", "STREET"),
    ("2.5.4.10", "O"),
    ("2.5.4.11", "OU"),
    ("2.5.4.5", "SERIALNUMBER"),
    ("0.9.2342.19200300.100.1.25", "DC"),
    ("0.9.2342.19200300.100.1.1", "UID"),
    ("1.2.840.113549.1.9.1", "emailAddress"),
];

/// The `p:<DN>` SNC name of a DER certificate's subject, or why it has none.
pub fn snc_name_of(cert_der: &[u8]) -> Result<String, String> {
    let (_, cert) = X509Certificate::from_der(cert_der)
        .map_err(|e| format!("certificate cannot be parsed: {e}"))?;
    let dn = rfc4514(cert.subject());
    if dn.is_empty() {
        return Err("certificate has an empty subject".into());
    }
    Ok(format!("p:{dn}"))
}

/// An X.509 name in RFC 4514 form: RDNs in reverse order joined by `,`, multi-valued RDNs
/// joined by `+`.
pub fn rfc4514(name: &X509Name<'_>) -> String {
    let rdns: Vec<String> = name
        .iter()
        .map(|rdn| rdn.iter().map(attribute).collect::<Vec<_>>().join("+"))
        .collect();
    rdns.into_iter().rev().collect::<Vec<_>>().join(",")
}

/// `type=value` with the value escaped.
fn attribute(attr: &AttributeTypeAndValue<'_>) -> String {
    let oid = attr.attr_type().to_id_string();
    let kind = SHORT_NAMES
        .iter()
        .find(|(id, _)| *id == oid)
        .map_or(oid.clone(), |(_, short)| (*short).to_string());
    let value = match attr.as_str() {
        Ok(text) => escape(text),
        Err(_) => match bmp_string(attr) {
            Some(text) => escape(&text),
            None => format!("#{}", hex(attr.as_slice())),
        },
    };
    format!("{kind}={value}")
}

/// A BMPString (UTF-16BE) value, when the attribute is one.
fn bmp_string(attr: &AttributeTypeAndValue<'_>) -> Option<String> {
    use x509_parser::der_parser::asn1_rs::Tag;
    if attr.attr_value().tag() != Tag::BmpString {
        return None;
    }
    let bytes = attr.as_slice();
    if bytes.len() % 2 != 0 {
        return None;
    }
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .collect();
    String::from_utf16(&units).ok()
}

/// RFC 4514 §2.4 escaping: `"+,;<>\` everywhere, `#` and blank at the start, blank at the
/// end, NUL as `\00`.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        match c {
            '"' | '+' | ',' | ';' | '<' | '>' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '#' if i == 0 => out.push_str("\\#"),
            ' ' if i == 0 || i == last => out.push_str("\\ "),
            '\0' => out.push_str("\\00"),
            _ => out.push(c),
        }
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn escapes_as_rfc4514_says() {
        assert_eq!(escape("a,b+c"), "a\\,b\\+c");
        assert_eq!(escape(" x "), "\\ x\\ ");
        assert_eq!(escape("#1"), "\\#1");
        assert_eq!(escape("a#b"), "a#b");
        assert_eq!(escape("plain"), "plain");
    }
}
