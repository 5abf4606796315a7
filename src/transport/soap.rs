//! The SOAP binding of the EAI web service (protocol §1.1): `RECEIVEMESSAGE(INMSG)` answered by
//! `RECEIVEMESSAGERESULT`, the WSDL that describes it, and faults.

use crate::message::DecodeError;
use crate::message::xml_tree;

pub const NAMESPACE: &str = "http://webservices.microsiga.com.br/fweai.apw";
pub const SOAP_ACTION: &str = "http://webservices.microsiga.com.br/fweai.apw/RECEIVEMESSAGE";
const ENVELOPE_NS: &str = "http://schemas.xmlsoap.org/soap/envelope/";

/// The TOTVSMessage a SOAP request carries in `INMSG`, whether in CDATA or escaped.
pub fn inbound_message(body: &[u8], max_depth: usize) -> Result<String, DecodeError> {
    let text = xml_tree::decode_text(body)?;
    let root = xml_tree::parse(&text, max_depth)?;
    if !root.name.eq_ignore_ascii_case("Envelope") {
        return Err(DecodeError::NotStandardMessage {
            pointer: format!("/{}", root.name),
            reason: "expected a SOAP Envelope".into(),
        });
    }
    let body = root
        .child("Body")
        .ok_or_else(|| DecodeError::NotStandardMessage {
            pointer: "/Envelope/Body".into(),
            reason: "the SOAP Body is missing".into(),
        })?;
    let operation = body
        .children
        .first()
        .ok_or_else(|| DecodeError::NotStandardMessage {
            pointer: "/Envelope/Body".into(),
            reason: "the SOAP Body is empty".into(),
        })?;
    if !operation.name.eq_ignore_ascii_case("RECEIVEMESSAGE") {
        return Err(DecodeError::NotStandardMessage {
            pointer: format!("/Envelope/Body/{}", operation.name),
            reason: "only the RECEIVEMESSAGE operation is offered".into(),
        });
    }
    let inmsg = operation
        .child("INMSG")
        .ok_or_else(|| DecodeError::NotStandardMessage {
            pointer: format!("/Envelope/Body/{}/INMSG", operation.name),
            reason: "INMSG is missing".into(),
        })?;
    // A caller may also put the TOTVSMessage inline instead of as text.
    if inmsg.text.trim().is_empty()
        && let Some(inline) = inmsg.children.first()
    {
        return Ok(write_element(inline));
    }
    Ok(inmsg.text.to_string())
}

fn write_element(el: &xml_tree::Element) -> String {
    let mut out = format!("<{}", el.name);
    for (k, v) in &el.attributes {
        out.push_str(&format!(" {k}=\"{}\"", escape(v)));
    }
    out.push('>');
    if el.children.is_empty() {
        out.push_str(&escape(&el.text));
    }
    for child in &el.children {
        out.push_str(&write_element(child));
    }
    out.push_str(&format!("</{}>", el.name));
    out
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Wraps a TOTVSMessage answer in the SOAP response.
pub fn response(totvs_message: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<soap:Envelope xmlns:soap=\"{ENVELOPE_NS}\"><soap:Body>\
<RECEIVEMESSAGERESPONSE xmlns=\"{NAMESPACE}\"><RECEIVEMESSAGERESULT>{}</RECEIVEMESSAGERESULT>\
</RECEIVEMESSAGERESPONSE></soap:Body></soap:Envelope>",
        escape(totvs_message)
    )
}

/// Builds the request a SOAP client sends.
pub fn request(totvs_message: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<soapenv:Envelope xmlns:soapenv=\"{ENVELOPE_NS}\"><soapenv:Body>\
<RECEIVEMESSAGE xmlns=\"{NAMESPACE}\"><INMSG>{}</INMSG></RECEIVEMESSAGE></soapenv:Body></soapenv:Envelope>",
        escape(totvs_message)
    )
}

/// The TOTVSMessage inside a SOAP response (`RECEIVEMESSAGERESULT`).
pub fn response_message(body: &[u8], max_depth: usize) -> Result<String, DecodeError> {
    let text = xml_tree::decode_text(body)?;
    let root = xml_tree::parse(&text, max_depth)?;
    let result = root
        .child("Body")
        .and_then(|b| b.children.first())
        .and_then(|r| r.child("RECEIVEMESSAGERESULT"))
        .ok_or_else(|| DecodeError::NotStandardMessage {
            pointer: "/Envelope/Body/RECEIVEMESSAGERESPONSE/RECEIVEMESSAGERESULT".into(),
            reason: "no RECEIVEMESSAGERESULT in the SOAP answer".into(),
        })?;
    if result.text.trim().is_empty()
        && let Some(inline) = result.children.first()
    {
        return Ok(write_element(inline));
    }
    Ok(result.text.to_string())
}

/// A SOAP fault: `Client` for what the caller sent, `Server` for what failed here.
pub fn fault(client: bool, reason: &str) -> String {
    let code = if client { "soap:Client" } else { "soap:Server" };
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<soap:Envelope xmlns:soap=\"{ENVELOPE_NS}\"><soap:Body><soap:Fault>\
<faultcode>{code}</faultcode><faultstring>{}</faultstring></soap:Fault></soap:Body></soap:Envelope>",
        escape(reason)
    )
}

/// The WSDL of the endpoint, pointing at `location`.
pub fn wsdl(location: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="http://schemas.xmlsoap.org/wsdl/" xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/"
  xmlns:s="http://www.w3.org/2001/XMLSchema" xmlns:s0="{NAMESPACE}" targetNamespace="{NAMESPACE}">
  <types>
    <s:schema elementFormDefault="qualified" targetNamespace="{NAMESPACE}">
      <s:element name="RECEIVEMESSAGE">
        <s:complexType><s:sequence><s:element name="INMSG" type="s:string" minOccurs="1" maxOccurs="1"/></s:sequence></s:complexType>
      </s:element>
      <s:element name="RECEIVEMESSAGERESPONSE">
        <s:complexType><s:sequence><s:element name="RECEIVEMESSAGERESULT" type="s:string" minOccurs="1" maxOccurs="1"/></s:sequence></s:complexType>
      </s:element>
    </s:schema>
  </types>
  <message name="RECEIVEMESSAGESOAPIN"><part name="parameters" element="s0:RECEIVEMESSAGE"/></message>
  <message name="RECEIVEMESSAGESOAPOUT"><part name="parameters" element="s0:RECEIVEMESSAGERESPONSE"/></message>
  <portType name="EAISERVICESOAP">
    <operation name="RECEIVEMESSAGE">
      <documentation>Receives a TOTVS standard message (TOTVSMessage) and returns the Receipt or Response.</documentation>
      <input message="s0:RECEIVEMESSAGESOAPIN"/>
      <output message="s0:RECEIVEMESSAGESOAPOUT"/>
    </operation>
  </portType>
  <binding name="EAISERVICESOAP" type="s0:EAISERVICESOAP">
    <soap:binding transport="http://schemas.xmlsoap.org/soap/http" style="document"/>
    <operation name="RECEIVEMESSAGE">
      <soap:operation soapAction="{SOAP_ACTION}" style="document"/>
      <input><soap:body use="literal"/></input>
      <output><soap:body use="literal"/></output>
    </operation>
  </binding>
  <service name="EAISERVICE">
    <port name="EAISERVICESOAP" binding="s0:EAISERVICESOAP">
      <soap:address location="{location}"/>
    </port>
  </service>
</definitions>
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_inmsg_in_cdata_escaped_or_inline() {
        let inner = "<TOTVSMessage><MessageInformation/></TOTVSMessage>";
        let cdata = format!(
            "<soapenv:Envelope xmlns:soapenv=\"{ENVELOPE_NS}\"><soapenv:Body><RECEIVEMESSAGE xmlns=\"{NAMESPACE}\"><INMSG><![CDATA[{inner}]]></INMSG></RECEIVEMESSAGE></soapenv:Body></soapenv:Envelope>"
        );
        assert_eq!(inbound_message(cdata.as_bytes(), 64).unwrap(), inner);
        assert_eq!(
            inbound_message(request(inner).as_bytes(), 64).unwrap(),
            inner
        );
        let inline = cdata.replace("<![CDATA[", "").replace("]]>", "");
        assert_eq!(
            inbound_message(inline.as_bytes(), 64).unwrap(),
            "<TOTVSMessage><MessageInformation></MessageInformation></TOTVSMessage>"
        );
    }

    #[test]
    fn answers_round_trip() {
        let answer = "<TOTVSMessage><ReceiptMessage/></TOTVSMessage>";
        assert_eq!(
            response_message(response(answer).as_bytes(), 64).unwrap(),
            answer
        );
    }

    #[test]
    fn refuses_other_operations() {
        let other = format!("<Envelope><Body><GETSTATUS xmlns=\"{NAMESPACE}\"/></Body></Envelope>");
        assert!(matches!(
            inbound_message(other.as_bytes(), 64),
            Err(DecodeError::NotStandardMessage { .. })
        ));
    }
}
