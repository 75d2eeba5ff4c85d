//! Reading the GMC chain out of a blob.

use peergroup_credential_roles::{CertChain, ChainError, RevocationSet};

use crate::error::Error;
use crate::reader::Element;

/// Reads a base64 PKCS#7 chain from `element` and checks its structure.
///
/// The chain must parse ([`CertChain::from_pkcs7`]), start at its group's root certificate
/// and end in a member certificate, and every rule of [`CertChain::validate`] that does not
/// depend on time or revocations must hold (signatures, issuer names, nested validity,
/// roles, no repeated key). Whether it is valid *now* and not revoked is for the caller to
/// decide, with [`CertChain::validate`].
pub(crate) fn read_chain(element: &Element, name: &'static str) -> Result<CertChain, Error> {
    let bytes = element.base64(name)?;
    let chain = CertChain::from_pkcs7(&bytes).map_err(|source| Error::Chain {
        element: name,
        source,
    })?;
    check_structure(&chain).map_err(|e| Error::Chain {
        element: name,
        source: e.into(),
    })?;
    Ok(chain)
}

/// The time-independent rules of chain validation.
///
/// Validity windows must nest (child inside parent), so the leaf's start lies inside every
/// certificate's window; validating at that instant with no revocations checks exactly the
/// structural rules. (A `CertChain::check_structure` in credential-roles would say this
/// directly.)
pub(crate) fn check_structure(chain: &CertChain) -> Result<(), ChainError> {
    if chain.len() < 2 {
        return Err(ChainError::Malformed {
            index: 0,
            reason: "the chain holds only the group root certificate; it must end in a group \
                     member certificate"
                .into(),
        });
    }
    for (index, cert) in chain.certificates().iter().enumerate() {
        if cert.not_before() > cert.not_after() {
            return Err(ChainError::Malformed {
                index,
                reason: "its validity ends before it starts".into(),
            });
        }
    }
    let at = chain.leaf().not_before();
    chain
        .validate(chain.group(), at, &RevocationSet::new(), None)
        .map(|_| ())
}
