//! This marketplace's orders API for reconciliation: not written yet.

use crate::orders::{
    AccessToken, ApiError, ApiRequest, ApiResponse, OrdersApi, OrdersContext, Page, Window,
};

/// The orders client.
pub struct Api;

fn not_yet() -> ApiError {
    ApiError::Config("this marketplace's orders API is not supported yet".into())
}

impl OrdersApi for Api {
    fn default_base_url(&self) -> &'static str {
        ""
    }

    fn credential_names(&self) -> &'static [&'static str] {
        &[]
    }

    fn token_request(&self, _ctx: &OrdersContext) -> Result<Option<ApiRequest>, ApiError> {
        Err(not_yet())
    }

    fn read_token(&self, _: &OrdersContext, _: &ApiResponse) -> Result<AccessToken, ApiError> {
        Err(not_yet())
    }

    fn page_request(
        &self,
        _: &OrdersContext,
        _: Option<&AccessToken>,
        _: Window,
        _: Option<&str>,
    ) -> Result<ApiRequest, ApiError> {
        Err(not_yet())
    }

    fn read_page(&self, _: &OrdersContext, _: Window, _: &ApiResponse) -> Result<Page, ApiError> {
        Err(not_yet())
    }
}
