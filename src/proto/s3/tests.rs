mod checksum;
mod request;
mod sigv4;
mod url;
mod xml;
