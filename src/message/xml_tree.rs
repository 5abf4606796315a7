//! A small element tree read with quick-xml, with the guards a public endpoint needs: no DTDs
//! (so no entity expansion), bounded depth, positions in every error.

use std::borrow::Cow;

use quick_xml::events::Event;
use quick_xml::reader::Reader;

use super::error::{DecodeError, line_column};

/// Names and text borrow from the document where they can: most need no unescaping.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Element<'a> {
    /// Local name: a namespace prefix is dropped.
    pub name: Cow<'a, str>,
    pub attributes: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    pub children: Vec<Element<'a>>,
    pub text: Cow<'a, str>,
    /// Written as `<x/>` rather than `<x></x>`: an object whose text field is absent, not empty.
    pub self_closing: bool,
}

impl<'a> Element<'a> {
    pub fn child(&self, name: &str) -> Option<&Element<'a>> {
        self.children
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(name))
    }

    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_ref())
    }

    pub fn is_leaf(&self) -> bool {
        self.children.is_empty()
    }
}

/// Turns the bytes into text, honouring a declared single-byte encoding (Protheus may send
/// ISO-8859-1 / Windows-1252); anything else must be UTF-8.
pub fn decode_text(bytes: &[u8]) -> Result<std::borrow::Cow<'_, str>, DecodeError> {
    let declared = declared_encoding(bytes);
    let encoding = match &declared {
        None => encoding_rs::UTF_8,
        Some(label) => encoding_rs::Encoding::for_label(label.as_bytes()).ok_or_else(|| {
            DecodeError::Encoding {
                encoding: label.clone(),
                offset: 0,
                reason: "unknown encoding declared".into(),
            }
        })?,
    };
    if encoding == encoding_rs::UTF_8 {
        return std::str::from_utf8(bytes)
            .map(std::borrow::Cow::Borrowed)
            .map_err(|e| DecodeError::Encoding {
                encoding: "UTF-8".into(),
                offset: e.valid_up_to(),
                reason: "invalid UTF-8 sequence".into(),
            });
    }
    if !encoding.is_single_byte() {
        return Err(DecodeError::Encoding {
            encoding: encoding.name().into(),
            offset: 0,
            reason: "only UTF-8 and single-byte encodings are accepted".into(),
        });
    }
    let (text, _) = encoding.decode_without_bom_handling(bytes);
    Ok(text)
}

fn declared_encoding(bytes: &[u8]) -> Option<String> {
    let head = &bytes[..bytes.len().min(256)];
    let head = String::from_utf8_lossy(head);
    let decl_end = head.find("?>")?;
    let decl = &head[..decl_end];
    if !decl.trim_start().starts_with("<?xml") {
        return None;
    }
    let at = decl.find("encoding")?;
    let rest = decl[at + "encoding".len()..]
        .trim_start()
        .strip_prefix('=')?
        .trim_start();
    let quote = rest.chars().next().filter(|q| *q == '"' || *q == '\'')?;
    let rest = &rest[quote.len_utf8()..];
    let end = rest.find(quote)?;
    Some(rest[..end].to_owned())
}

/// Parses a whole document into its root element.
pub fn parse(text: &str, max_depth: usize) -> Result<Element<'_>, DecodeError> {
    let mut reader = Reader::from_str(text);
    let config = reader.config_mut();
    config.trim_text(false);
    config.check_end_names = true;
    config.expand_empty_elements = false;

    let syntax = |offset: u64, reason: String| {
        let (line, column) = line_column(text, offset as usize);
        DecodeError::Syntax {
            format: "XML",
            line,
            column,
            reason,
        }
    };
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    loop {
        let event = reader
            .read_event()
            .map_err(|e| syntax(reader.error_position(), e.to_string()))?;
        let position = reader.buffer_position();
        match event {
            Event::Start(start) | Event::Empty(start) if root.is_some() => {
                let _ = start;
                return Err(syntax(position, "content after the root element".into()));
            }
            Event::Start(start) => {
                if stack.len() >= max_depth {
                    let (line, column) = line_column(text, position as usize);
                    return Err(DecodeError::TooDeep {
                        limit: max_depth,
                        line,
                        column,
                    });
                }
                stack.push(open(&start, text, position)?);
            }
            Event::Empty(start) => {
                let mut element = open(&start, text, position)?;
                element.self_closing = true;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(element),
                    None => root = Some(element),
                }
            }
            Event::End(_) => {
                let element = stack
                    .pop()
                    .ok_or_else(|| syntax(position, "unexpected end tag".into()))?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(element),
                    None => root = Some(element),
                }
            }
            Event::Text(t) => {
                let content = t.xml10_content();
                match stack.last_mut() {
                    Some(el) => append(&mut el.text, text, content),
                    None if content.trim().is_empty() => {}
                    None => return Err(syntax(position, "text outside the root element".into())),
                }
            }
            Event::CData(c) => match stack.last_mut() {
                Some(el) => append(&mut el.text, text, c.xml10_content()),
                None => return Err(syntax(position, "CDATA outside the root element".into())),
            },
            Event::GeneralRef(r) => {
                let resolved = if r.is_char_ref() {
                    r.resolve_char_ref()
                        .map_err(|e| syntax(position, e.to_string()))?
                        .map(String::from)
                } else {
                    quick_xml::escape::resolve_predefined_entity(&r.xml10_content())
                        .map(str::to_owned)
                };
                let Some(resolved) = resolved else {
                    return Err(syntax(
                        position,
                        format!("unknown entity &{};", r.xml10_content()),
                    ));
                };
                match stack.last_mut() {
                    Some(el) => el.text.to_mut().push_str(&resolved),
                    None => {
                        return Err(syntax(
                            position,
                            "reference outside the root element".into(),
                        ));
                    }
                }
            }
            Event::DocType(_) => {
                return Err(syntax(
                    position,
                    "DOCTYPE declarations are not accepted (entity expansion)".into(),
                ));
            }
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        let (line, column) = line_column(text, text.len());
        return Err(DecodeError::Syntax {
            format: "XML",
            line,
            column,
            reason: format!(
                "the document ends inside <{}> (truncated?)",
                stack.last().map_or("", |e| e.name.as_ref())
            ),
        });
    }
    root.ok_or_else(|| DecodeError::Syntax {
        format: "XML",
        line: 1,
        column: 1,
        reason: "no root element".into(),
    })
}

/// Adds a piece of text to an element's; the first piece is kept borrowed when it can be.
fn append<'a>(to: &mut Cow<'a, str>, document: &'a str, piece: Cow<'_, str>) {
    if to.is_empty() {
        *to = borrow_from(document, piece);
    } else {
        to.to_mut().push_str(&piece);
    }
}

/// `part` as a borrow of the document when it is a slice of it, as quick-xml gives names and
/// unescaped text; a copy otherwise.
fn borrow_from<'a>(document: &'a str, part: Cow<'_, str>) -> Cow<'a, str> {
    let start = (part.as_ptr() as usize).wrapping_sub(document.as_ptr() as usize);
    match document.get(start..start.wrapping_add(part.len())) {
        Some(slice) if slice.as_ptr() == part.as_ptr() => Cow::Borrowed(slice),
        _ => Cow::Owned(part.into_owned()),
    }
}

fn open<'a>(
    start: &quick_xml::events::BytesStart<'_>,
    text: &'a str,
    position: u64,
) -> Result<Element<'a>, DecodeError> {
    let name = borrow_from(text, Cow::Borrowed(local(start.name().as_ref())));
    let mut attributes = Vec::new();
    for attribute in start.attributes() {
        let attribute = attribute.map_err(|e| attribute_error(text, position, e.to_string()))?;
        let key: &str = attribute.key.as_ref();
        if key == "xmlns" || key.starts_with("xmlns:") {
            continue;
        }
        let value = attribute
            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .map_err(|e| attribute_error(text, position, e.to_string()))?;
        attributes.push((
            borrow_from(text, Cow::Borrowed(local(key))),
            borrow_from(text, value),
        ));
    }
    Ok(Element {
        name,
        attributes,
        children: Vec::new(),
        text: Cow::Borrowed(""),
        self_closing: false,
    })
}

fn attribute_error(text: &str, position: u64, reason: String) -> DecodeError {
    let (line, column) = line_column(text, position as usize);
    DecodeError::Syntax {
        format: "XML",
        line,
        column,
        reason: format!("bad attribute: {reason}"),
    }
}

fn local(name: &str) -> &str {
    match name.rfind(':') {
        Some(i) => &name[i + 1..],
        None => name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_text_cdata_and_entities() {
        let root = parse(
            "<a x=\"1\"><b>l&amp;m <![CDATA[<raw>]]>&#65;</b><c/></a>",
            8,
        )
        .unwrap();
        assert_eq!(root.attribute("x"), Some("1"));
        assert_eq!(root.child("b").unwrap().text, "l&m <raw>A");
        assert!(root.child("C").is_some());
    }

    #[test]
    fn refuses_doctype_and_unknown_entities() {
        let bomb = "<?xml version=\"1.0\"?><!DOCTYPE a [<!ENTITY x \"xx\">]><a>&x;</a>";
        assert!(
            matches!(parse(bomb, 8), Err(DecodeError::Syntax { reason, .. }) if reason.contains("DOCTYPE"))
        );
        assert!(
            matches!(parse("<a>&x;</a>", 8), Err(DecodeError::Syntax { reason, .. }) if reason.contains("unknown entity"))
        );
    }

    #[test]
    fn reports_truncation_and_depth() {
        assert!(
            matches!(parse("<a><b>text", 8), Err(DecodeError::Syntax { reason, .. }) if reason.contains("truncated"))
        );
        let deep = "<a>".repeat(10) + &"</a>".repeat(10);
        assert!(matches!(
            parse(&deep, 5),
            Err(DecodeError::TooDeep { limit: 5, .. })
        ));
    }

    #[test]
    fn reports_mismatched_tags_with_position() {
        let err = parse("<a>\n<b></c></a>", 8).unwrap_err();
        assert!(
            matches!(err, DecodeError::Syntax { line: 2, .. }),
            "{err:?}"
        );
    }

    #[test]
    fn honours_a_declared_latin1_encoding() {
        let bytes = b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><a>S\xe3o Paulo</a>";
        let text = decode_text(bytes).unwrap();
        assert_eq!(parse(&text, 8).unwrap().text, "São Paulo");
        let bad = b"<a>S\xe3o</a>";
        assert!(matches!(
            decode_text(bad),
            Err(DecodeError::Encoding { offset: 4, .. })
        ));
    }
}
