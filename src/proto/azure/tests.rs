mod conn_string;
mod request;
mod xml;
