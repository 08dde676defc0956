//! What the tests that drive the generated gRPC client share: requests carrying a token, and
//! Authenticate.

use kvstore_server::proto::etcdserverpb::AuthenticateRequest;
use kvstore_server::proto::etcdserverpb::auth_client::AuthClient;
use tonic::Request;
use tonic::transport::Channel;

/// A request carrying `token` (none: no metadata).
pub fn with_token<T>(message: T, token: Option<&str>) -> Request<T> {
    let mut request = Request::new(message);
    if let Some(token) = token {
        request
            .metadata_mut()
            .insert("token", token.parse().expect("ascii token"));
    }
    request
}

/// The token Authenticate hands `name` with `password`.
pub async fn authenticate(auth: &mut AuthClient<Channel>, name: &str, password: &str) -> String {
    auth.authenticate(AuthenticateRequest {
        name: name.into(),
        password: password.into(),
    })
    .await
    .expect("authenticate")
    .into_inner()
    .token
}
