//! Errors of the simulated API server and their wire form, the `meta/v1` Status object.
//! Only shapes errors; it must not decide when a request fails.

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::resources::ResourceDef;

#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    #[error("{resource} \"{name}\" not found")]
    NotFound {
        resource: String,
        group: String,
        kind: String,
        name: String,
    },
    #[error("{resource} \"{name}\" already exists")]
    AlreadyExists {
        resource: String,
        group: String,
        kind: String,
        name: String,
    },
    #[error(
        "Operation cannot be fulfilled on {resource} \"{name}\": the object has been modified; please apply your changes to the latest version and try again"
    )]
    Conflict {
        resource: String,
        group: String,
        kind: String,
        name: String,
    },
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Invalid(String),
    #[error("too old resource version: {requested} ({oldest})")]
    Gone { requested: u64, oldest: u64 },
    #[error("the server could not find the requested resource")]
    NoRoute,
    #[error("the server does not allow this method on the requested resource")]
    MethodNotAllowed,
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("the server is currently unable to handle the request (simulated API outage)")]
    Unavailable,
    /// RBAC refused the request; `message` is the API server's full sentence.
    #[error("{message}")]
    Forbidden {
        message: String,
        group: String,
        kind: String,
        name: String,
    },
}

impl ApiError {
    pub fn not_found(def: &ResourceDef, name: &str) -> Self {
        ApiError::NotFound {
            resource: def.qualified(),
            group: def.group.to_string(),
            kind: def.plural.to_string(),
            name: name.to_string(),
        }
    }

    pub fn already_exists(def: &ResourceDef, name: &str) -> Self {
        ApiError::AlreadyExists {
            resource: def.qualified(),
            group: def.group.to_string(),
            kind: def.plural.to_string(),
            name: name.to_string(),
        }
    }

    pub fn conflict(def: &ResourceDef, name: &str) -> Self {
        ApiError::Conflict {
            resource: def.qualified(),
            group: def.group.to_string(),
            kind: def.plural.to_string(),
            name: name.to_string(),
        }
    }

    pub fn code(&self) -> StatusCode {
        match self {
            ApiError::NotFound { .. } | ApiError::NoRoute => StatusCode::NOT_FOUND,
            ApiError::AlreadyExists { .. } | ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Gone { .. } => StatusCode::GONE,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Forbidden { .. } => StatusCode::FORBIDDEN,
        }
    }

    fn reason(&self) -> &'static str {
        match self {
            ApiError::NotFound { .. } | ApiError::NoRoute => "NotFound",
            ApiError::AlreadyExists { .. } => "AlreadyExists",
            ApiError::Conflict { .. } => "Conflict",
            ApiError::BadRequest(_) => "BadRequest",
            ApiError::Invalid(_) => "Invalid",
            ApiError::Gone { .. } => "Expired",
            ApiError::MethodNotAllowed => "MethodNotAllowed",
            ApiError::UnsupportedMediaType(_) => "UnsupportedMediaType",
            ApiError::Unavailable => "ServiceUnavailable",
            ApiError::Forbidden { .. } => "Forbidden",
        }
    }

    /// The Status object a real API server sends for this error.
    pub fn status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.to_string(),
            "reason": self.reason(),
            "code": self.code().as_u16(),
        });
        let details = match self {
            ApiError::NotFound {
                group, kind, name, ..
            }
            | ApiError::AlreadyExists {
                group, kind, name, ..
            }
            | ApiError::Conflict {
                group, kind, name, ..
            }
            | ApiError::Forbidden {
                group, kind, name, ..
            } => {
                let mut d = json!({"name": name, "kind": kind});
                if !group.is_empty()
                    && let Some(obj) = d.as_object_mut()
                {
                    obj.insert("group".into(), json!(group));
                }
                Some(d)
            }
            _ => None,
        };
        if let (Some(d), Some(obj)) = (details, status.as_object_mut()) {
            obj.insert("details".into(), d);
        }
        status
    }
}

impl axum::response::IntoResponse for ApiError {
    fn into_response(self) -> axum::response::Response {
        let body = self.status().to_string();
        let mut resp = (
            self.code(),
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response();
        if matches!(self, ApiError::Unavailable) {
            // As an overloaded API server does: clients (kube-rs retries 503) come back in 1 s.
            resp.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("1"),
            );
        }
        resp
    }
}
