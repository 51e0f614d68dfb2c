//! Errors of the API source in words a user can act on.
//!
//! kube-rs reports a certificate the kubeconfig's CA does not trust as `client error (Connect)`:
//! true, and useless at 3 a.m. The cause is deep in the error's source chain (a `rustls::Error`
//! wrapped in an `io::Error`), so the chain is walked and the first cause that says what to fix
//! is named: an untrusted, expired or not-yet-valid certificate, a certificate for another host
//! name, refused or reset connections, and the API's own 401 and 403 (with the verb and the
//! resource the RBAC lacks).

use std::error::Error as StdError;

use kube::core::Status;
use rustls::CertificateError;

use super::Kind;

/// What the agent asked the API for, for messages (`RBAC does not allow list on ...`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verb {
    /// Group discovery (`GET /apis/<group>/<version>`).
    Discover,
    /// A page of a list.
    List,
    /// A watch.
    Watch,
}

impl Verb {
    fn rbac(self) -> &'static str {
        match self {
            Verb::Discover => "get",
            Verb::List => "list",
            Verb::Watch => "watch",
        }
    }
}

/// `pods`, `networkpolicies.networking.k8s.io`: the resource as RBAC rules name it.
fn rbac_resource(kind: Kind) -> String {
    if kind.group.is_empty() {
        kind.plural.to_string()
    } else {
        format!("{}.{}", kind.plural, kind.group)
    }
}

/// Who asked the API: the words of a 403 differ (the agent's service account needs
/// deploy/rbac.yaml; a user needs a role of their cluster).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Asker {
    /// The node agent.
    Agent,
    /// A person running `netpol` with their kubeconfig.
    User,
}

/// One line saying what went wrong with `verb` of `kind` and, where known, what to fix.
pub fn describe(error: &kube::Error, kind: Kind, verb: Verb) -> String {
    describe_for(error, kind, verb, Asker::Agent)
}

/// [`describe`], in the words for `asker`.
pub fn describe_for(error: &kube::Error, kind: Kind, verb: Verb, asker: Asker) -> String {
    if let kube::Error::Api(status) = error {
        return describe_status_for(status, kind, verb, asker);
    }
    match cause(error) {
        Some(cause) => format!("{cause} ({})", chain(error)),
        None => chain(error),
    }
}

/// An error answer of the API (an HTTP error status, or an ERROR event of a watch).
pub fn describe_status(status: &Status, kind: Kind, verb: Verb) -> String {
    describe_status_for(status, kind, verb, Asker::Agent)
}

/// [`describe_status`], in the words for `asker`.
pub fn describe_status_for(status: &Status, kind: Kind, verb: Verb, asker: Asker) -> String {
    let said = if status.message.is_empty() {
        String::new()
    } else {
        format!("; the API server said: {}", status.message)
    };
    match status.code {
        401 => format!(
            "401 Unauthorized: the API server does not accept the agent's credentials (the \
             kubeconfig's or service account's token or client certificate is wrong or \
             expired){said}"
        ),
        403 if asker == Asker::User => format!(
            "403 Forbidden: RBAC does not allow `{}` on `{}` for your identity (check with \
             `kubectl auth can-i {} {}`; ask for a role granting it, or give manifests as \
             PATHs){said}",
            verb.rbac(),
            rbac_resource(kind),
            verb.rbac(),
            rbac_resource(kind)
        ),
        403 => format!(
            "403 Forbidden: RBAC does not allow `{}` on `{}` for the agent's identity; the \
             agent needs get, list and watch on it (deploy/rbac.yaml){said}",
            verb.rbac(),
            rbac_resource(kind)
        ),
        404 => format!(
            "404 Not Found: the API does not serve {}{said}",
            kind.plural
        ),
        code => format!(
            "the API server answered {code} {}{said}",
            if status.reason.is_empty() {
                "(no reason)"
            } else {
                &status.reason
            }
        ),
    }
}

/// The error and its sources, joined: `a: b: c` (each level once).
fn chain(error: &(dyn StdError + 'static)) -> String {
    let mut out = error.to_string();
    let mut next = error.source();
    while let Some(e) = next {
        let text = e.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        next = source_of(e);
    }
    out
}

/// The next error down the chain. `io::Error::source` skips the error it wraps (it returns
/// that error's source), so an `io::Error` is opened with `get_ref` instead.
fn source_of<'a>(e: &'a (dyn StdError + 'static)) -> Option<&'a (dyn StdError + 'static)> {
    match e.downcast_ref::<std::io::Error>() {
        Some(io) => io.get_ref().map(|inner| inner as &(dyn StdError + 'static)),
        None => e.source(),
    }
}

/// The first cause in the chain that tells the user what to fix.
fn cause(error: &(dyn StdError + 'static)) -> Option<String> {
    let mut next = Some(error);
    while let Some(e) = next {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(describe_tls(tls));
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if let Some(text) = describe_io(io) {
                return Some(text);
            }
        }
        next = source_of(e);
    }
    None
}

fn describe_tls(error: &rustls::Error) -> String {
    let rustls::Error::InvalidCertificate(cert) = error else {
        return format!("the TLS handshake with the API server failed: {error}");
    };
    match cert {
        CertificateError::UnknownIssuer | CertificateError::BadSignature => {
            "the API server's certificate is not trusted by the CA of the kubeconfig \
             (certificate-authority / certificate-authority-data; in a pod, the service \
             account's ca.crt): a wrong CA, or not the API server meant"
                .to_string()
        }
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            "the API server's certificate has expired (or this node's clock is wrong: \
             compare it with the certificate's notAfter)"
                .to_string()
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            "the API server's certificate is not valid yet (is this node's clock right?)"
                .to_string()
        }
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            "the API server's certificate is not valid for the host name of the server URL \
             (use a name the certificate lists, or set tls-server-name in the kubeconfig)"
                .to_string()
        }
        other => format!("the API server's certificate was rejected: {other:?}"),
    }
}

fn describe_io(error: &std::io::Error) -> Option<String> {
    use std::io::ErrorKind;
    let text = match error.kind() {
        ErrorKind::ConnectionRefused => "the API server refused the connection (is it up, and is the server URL right?)",
        ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted => {
            "the connection to the API server was reset (the server or a load balancer in between dropped it)"
        }
        ErrorKind::TimedOut => "the connection to the API server timed out",
        _ => return None,
    };
    Some(text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use netpol_k8s::schema;

    #[test]
    fn a_forbidden_answer_names_the_verb_and_the_resource_rbac_lacks() {
        let status = Status::failure("pods is forbidden", "Forbidden").with_code(403);
        let text = describe_status(&status, &schema::POD, Verb::Watch);
        assert!(text.contains("`watch` on `pods`"), "{text}");
        let text = describe_status(&status, &schema::NETWORK_POLICY, Verb::List);
        assert!(
            text.contains("`list` on `networkpolicies.networking.k8s.io`"),
            "{text}"
        );
    }

    #[test]
    fn a_forbidden_answer_to_a_user_says_how_to_check_it_not_the_agents_rbac() {
        let status = Status::failure("pods is forbidden", "Forbidden").with_code(403);
        let text = describe_status_for(&status, &schema::POD, Verb::List, Asker::User);
        assert!(
            text.contains("`list` on `pods` for your identity"),
            "{text}"
        );
        assert!(text.contains("kubectl auth can-i list pods"), "{text}");
        assert!(!text.contains("rbac.yaml"), "{text}");
    }

    #[test]
    fn a_tls_cause_wrapped_in_an_io_error_is_found() {
        let tls = rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer);
        let io = std::io::Error::other(tls);
        let text = cause(&io).unwrap();
        assert!(text.contains("not trusted by the CA"), "{text}");
    }
}
