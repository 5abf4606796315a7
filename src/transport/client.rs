//! A client of EAI endpoints (REST and SOAP), used by delivery and by `eaibus send`.

use std::time::Duration;

use thiserror::Error;

use super::{auth, soap};
use crate::adapter::Credentials;

/// What an EAI endpoint answered, before the message in it is decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    /// The body (REST) or the TOTVSMessage of `RECEIVEMESSAGERESULT` (SOAP).
    pub body: String,
}

impl Reply {
    /// HTTP 202: an asynchronous receiver holds the message; its Response comes later.
    pub fn is_accepted(&self) -> bool {
        self.status == 202
    }
}

#[derive(Debug, Error)]
pub enum ClientError {
    /// No answer in time: the outcome is unknown (Não entregue), retrying is safe by UUID.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("cannot reach the endpoint: {0}")]
    Connect(String),
    /// 5xx and 429 are retryable, other statuses are permanent.
    #[error("the endpoint answered HTTP {status}: {body}")]
    Status { status: u16, body: String },
    #[error("the endpoint's answer is not a SOAP response: {0}")]
    BadAnswer(String),
}

impl ClientError {
    pub fn is_retryable(&self) -> bool {
        match self {
            ClientError::Timeout(_) | ClientError::Connect(_) => true,
            ClientError::Status { status, .. } => *status == 429 || *status >= 500,
            ClientError::BadAnswer(_) => false,
        }
    }

    pub fn is_timeout(&self) -> bool {
        matches!(self, ClientError::Timeout(_))
    }
}

#[derive(Debug, Clone)]
pub struct EaiClient {
    http: reqwest::Client,
}

impl Default for EaiClient {
    fn default() -> Self {
        Self::new()
    }
}

/// Longest answer body kept in an error.
const MAX_ERROR_BODY: usize = 2_000;

impl EaiClient {
    pub fn new() -> Self {
        crate::transport::install_crypto();
        EaiClient {
            http: reqwest::Client::builder()
                .pool_idle_timeout(Duration::from_secs(30))
                .build()
                .unwrap_or_default(),
        }
    }

    /// POSTs a JSON message to a REST EAI endpoint.
    pub async fn send_rest(
        &self,
        url: &str,
        json: String,
        credentials: Option<&Credentials>,
        timeout: Duration,
    ) -> Result<Reply, ClientError> {
        let mut request = self
            .http
            .post(url)
            .timeout(timeout)
            .header("Content-Type", "application/json; charset=utf-8")
            .body(json);
        if let Some(c) = credentials {
            request = request.header("Authorization", auth::basic_header(&c.user, c.password()));
        }
        let reply = self.finish(request, timeout).await?;
        Ok(reply)
    }

    /// Calls `RECEIVEMESSAGE` of a SOAP EAI endpoint; the reply body is the TOTVSMessage it returns.
    pub async fn send_soap(
        &self,
        url: &str,
        xml: &str,
        credentials: Option<&Credentials>,
        timeout: Duration,
    ) -> Result<Reply, ClientError> {
        let mut request = self
            .http
            .post(url)
            .timeout(timeout)
            .header("Content-Type", "text/xml; charset=utf-8")
            .header("SOAPAction", soap::SOAP_ACTION)
            .body(soap::request(xml));
        if let Some(c) = credentials {
            request = request.header("Authorization", auth::basic_header(&c.user, c.password()));
        }
        let reply = self.finish(request, timeout).await?;
        let inner = soap::response_message(reply.body.as_bytes(), 64)
            .map_err(|e| ClientError::BadAnswer(e.to_string()))?;
        Ok(Reply {
            status: reply.status,
            body: inner,
        })
    }

    async fn finish(
        &self,
        request: reqwest::RequestBuilder,
        timeout: Duration,
    ) -> Result<Reply, ClientError> {
        let response = request.send().await.map_err(|e| classify(e, timeout))?;
        let status = response.status().as_u16();
        let body = response.text().await.map_err(|e| classify(e, timeout))?;
        if (200..300).contains(&status) {
            Ok(Reply { status, body })
        } else {
            let mut body = body;
            if body.len() > MAX_ERROR_BODY {
                let cut = (0..=MAX_ERROR_BODY)
                    .rev()
                    .find(|i| body.is_char_boundary(*i))
                    .unwrap_or(0);
                body.truncate(cut);
            }
            Err(ClientError::Status { status, body })
        }
    }
}

fn classify(e: reqwest::Error, timeout: Duration) -> ClientError {
    if e.is_timeout() {
        ClientError::Timeout(timeout)
    } else {
        ClientError::Connect(e.to_string())
    }
}
